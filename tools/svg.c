#include "tools/svg.h"
typedef int svg_placeholder_t;
