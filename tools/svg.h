/* svg.h — a small writer of line and scatter plots as plain SVG 1.1.
 *
 * A plot has a title, two labelled axes with ticks, and series of points
 * drawn as lines, markers or both, optionally with a vertical range per
 * point (error bars or a shaded band, e.g. 1st..99th percentile). The x
 * axis may be logarithmic (base 2 or 10). Axis ranges follow the data
 * unless fixed. No dependencies beyond libc; text is XML-escaped.
 *
 *     struct svg_plot *p = svg_plot_new("Path length", "nodes", "hops");
 *     svg_plot_set_xscale(p, SVG_LOG2);
 *     int s = svg_plot_add_series(p, "mean", SVG_LINE | SVG_MARKERS | SVG_ERR_BAND);
 *     svg_series_add_range(p, s, 1024, 5.1, 2, 9);
 *     svg_plot_save(p, "paths.svg");
 *     svg_plot_free(p);
 *
 * Errors: functions return 0 (or an index) or a negative errno.
 */
#ifndef COOPFS_TOOLS_SVG_H
#define COOPFS_TOOLS_SVG_H

#include <stdio.h>

enum svg_scale { SVG_LINEAR, SVG_LOG2, SVG_LOG10 };

/* Series styles, or-ed together. */
enum {
    SVG_LINE = 1 << 0,     /* a polyline through the points, in x order of insertion */
    SVG_MARKERS = 1 << 1,  /* a marker on each point */
    SVG_DASHED = 1 << 2,   /* the line dashed */
    SVG_ERR_BARS = 1 << 3, /* a vertical bar from lo to hi at each point */
    SVG_ERR_BAND = 1 << 4, /* a shaded band through lo and hi */
    SVG_Y2 = 1 << 5,       /* measured on the right-hand axis (svg_plot_set_y2) */
};

/* Where the legend goes: a corner of the plot area, or in rows under the
 * x axis label (the plot area shrinks to make room). The default, AUTO,
 * takes a corner that hides no data, else goes below. */
enum svg_legend {
    SVG_LEGEND_AUTO,
    SVG_LEGEND_TOP_LEFT,
    SVG_LEGEND_TOP_RIGHT,
    SVG_LEGEND_BOTTOM_LEFT,
    SVG_LEGEND_BOTTOM_RIGHT,
    SVG_LEGEND_BELOW
};

struct svg_plot; /* opaque */

/* Makes an empty plot; the strings are copied (NULL means none). Returns
 * the plot or NULL when out of memory. Free it with svg_plot_free(). */
struct svg_plot *svg_plot_new(const char *title, const char *xlabel, const char *ylabel);
void svg_plot_free(struct svg_plot *p); /* NULL-safe */

/* Sets the size in pixels (default 720 x 480). */
void svg_plot_set_size(struct svg_plot *p, unsigned width, unsigned height);
/* Sets the x axis scale (default linear). Points with x <= 0 are skipped
 * on a logarithmic axis. */
void svg_plot_set_xscale(struct svg_plot *p, enum svg_scale scale);
void svg_plot_set_legend(struct svg_plot *p, enum svg_legend where);
/* Fixes an axis range instead of fitting the data; lo < hi. Ticks still
 * fall on round numbers inside it. Returns 0 or -EINVAL. */
int svg_plot_set_xrange(struct svg_plot *p, double lo, double hi);
int svg_plot_set_yrange(struct svg_plot *p, double lo, double hi);
/* Gives the plot a second y axis on the right, labelled label, for the
 * series styled SVG_Y2. Returns 0 or -ENOMEM. */
int svg_plot_set_y2(struct svg_plot *p, const char *label);
int svg_plot_set_y2range(struct svg_plot *p, double lo, double hi);
/* A second line of text under the title (e.g. the command and seed). */
int svg_plot_set_subtitle(struct svg_plot *p, const char *text);

/* Adds a series named name (shown in the legend; NULL hides it from the
 * legend) with the given style bits. Returns its index (>= 0), or -ENOMEM. */
int svg_plot_add_series(struct svg_plot *p, const char *name, unsigned style);
/* Appends a point to series s. Returns 0, -EINVAL (no such series or a
 * non-finite value) or -ENOMEM. */
int svg_series_add(struct svg_plot *p, int s, double x, double y);
/* Appends a point with a vertical range lo..hi (drawn as the series' error
 * bars or band). Returns as svg_series_add(). */
int svg_series_add_range(struct svg_plot *p, int s, double x, double y, double lo, double hi);

/* Writes the whole document to f. Returns 0, -EINVAL when the plot has no
 * point to show, or -EIO when writing failed. */
int svg_plot_write(const struct svg_plot *p, FILE *f);
/* Writes the document to path (replacing it). Returns 0 or a negative
 * errno as svg_plot_write() or fopen() gives. */
int svg_plot_save(const struct svg_plot *p, const char *path);

#endif
