/* svg.h — tiny SVG line-plot writer for the sim experiments (owned by the sim experiments). */
#ifndef COOPFS_TOOLS_SVG_H
#define COOPFS_TOOLS_SVG_H
#endif
