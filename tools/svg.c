/* svg.c — a small writer of line and scatter plots as plain SVG 1.1. */
#include "tools/svg.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TICKS 12

struct svg_point {
    double x, y, lo, hi;
    bool range;
};

struct svg_series {
    char *name;
    unsigned style;
    struct svg_point *pt;
    size_t n, cap;
};

struct svg_plot {
    char *title, *subtitle, *xlabel, *ylabel, *y2label;
    unsigned width, height;
    enum svg_scale xscale;
    enum svg_legend legend;
    bool xfixed, yfixed, y2fixed;
    double xlo, xhi, ylo, yhi, y2lo, y2hi;
    struct svg_series *series;
    size_t nseries;
};

/* Where the axes and the data go, in pixels, and the data ranges they map:
 * x in axis units (its log on a log axis), y[0] left, y[1] right. */
struct frame {
    double left, right, top, bottom;
    double xlo, xhi, ylo[2], yhi[2];
};

/* Air between the frame and the outermost data, in pixels. */
#define PAD_X 14.0
#define PAD_Y 8.0

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                      "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
#define NPALETTE (sizeof(palette) / sizeof(palette[0]))

static char *dup_or_null(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

struct svg_plot *svg_plot_new(const char *title, const char *xlabel, const char *ylabel)
{
    struct svg_plot *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->width = 720;
    p->height = 480;
    p->title = dup_or_null(title);
    p->xlabel = dup_or_null(xlabel);
    p->ylabel = dup_or_null(ylabel);
    if ((title && !p->title) || (xlabel && !p->xlabel) || (ylabel && !p->ylabel)) {
        svg_plot_free(p);
        return NULL;
    }
    return p;
}

void svg_plot_free(struct svg_plot *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nseries; i++) {
        free(p->series[i].name);
        free(p->series[i].pt);
    }
    free(p->series);
    free(p->title);
    free(p->subtitle);
    free(p->xlabel);
    free(p->ylabel);
    free(p->y2label);
    free(p);
}

void svg_plot_set_size(struct svg_plot *p, unsigned width, unsigned height)
{
    p->width = width < 200 ? 200 : width;
    p->height = height < 150 ? 150 : height;
}

void svg_plot_set_xscale(struct svg_plot *p, enum svg_scale scale)
{
    p->xscale = scale;
}

void svg_plot_set_legend(struct svg_plot *p, enum svg_legend where)
{
    p->legend = where;
}

int svg_plot_set_xrange(struct svg_plot *p, double lo, double hi)
{
    if (!isfinite(lo) || !isfinite(hi) || lo >= hi || (p->xscale != SVG_LINEAR && lo <= 0))
        return -EINVAL;
    p->xfixed = true;
    p->xlo = lo;
    p->xhi = hi;
    return 0;
}

int svg_plot_set_yrange(struct svg_plot *p, double lo, double hi)
{
    if (!isfinite(lo) || !isfinite(hi) || lo >= hi)
        return -EINVAL;
    p->yfixed = true;
    p->ylo = lo;
    p->yhi = hi;
    return 0;
}

int svg_plot_set_y2(struct svg_plot *p, const char *label)
{
    char *t = dup_or_null(label ? label : "");
    if (!t)
        return -ENOMEM;
    free(p->y2label);
    p->y2label = t;
    return 0;
}

int svg_plot_set_y2range(struct svg_plot *p, double lo, double hi)
{
    if (!isfinite(lo) || !isfinite(hi) || lo >= hi)
        return -EINVAL;
    p->y2fixed = true;
    p->y2lo = lo;
    p->y2hi = hi;
    return 0;
}

int svg_plot_set_subtitle(struct svg_plot *p, const char *text)
{
    char *t = dup_or_null(text);
    if (text && !t)
        return -ENOMEM;
    free(p->subtitle);
    p->subtitle = t;
    return 0;
}

int svg_plot_add_series(struct svg_plot *p, const char *name, unsigned style)
{
    struct svg_series *ns = realloc(p->series, (p->nseries + 1) * sizeof(*ns));
    if (!ns)
        return -ENOMEM;
    p->series = ns;
    struct svg_series *s = &p->series[p->nseries];
    memset(s, 0, sizeof(*s));
    s->name = dup_or_null(name);
    if (name && !s->name)
        return -ENOMEM;
    s->style = style ? style : SVG_LINE;
    return (int)p->nseries++;
}

static int add_point(struct svg_plot *p, int si, const struct svg_point *pt)
{
    if (si < 0 || (size_t)si >= p->nseries || !isfinite(pt->x) || !isfinite(pt->y) ||
        !isfinite(pt->lo) || !isfinite(pt->hi))
        return -EINVAL;
    struct svg_series *s = &p->series[si];
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct svg_point *np = realloc(s->pt, cap * sizeof(*np));
        if (!np)
            return -ENOMEM;
        s->pt = np;
        s->cap = cap;
    }
    s->pt[s->n++] = *pt;
    return 0;
}

int svg_series_add(struct svg_plot *p, int s, double x, double y)
{
    struct svg_point pt = {.x = x, .y = y, .lo = y, .hi = y, .range = false};
    return add_point(p, s, &pt);
}

int svg_series_add_range(struct svg_plot *p, int s, double x, double y, double lo, double hi)
{
    struct svg_point pt = {
        .x = x, .y = y, .lo = lo < hi ? lo : hi, .hi = lo < hi ? hi : lo, .range = true};
    return add_point(p, s, &pt);
}

/* x in axis units: itself, or its logarithm on a log axis. */
static double xaxis(const struct svg_plot *p, double x)
{
    switch (p->xscale) {
    case SVG_LOG2: return log2(x);
    case SVG_LOG10: return log10(x);
    case SVG_LINEAR:
    default: return x;
    }
}

static bool point_shown(const struct svg_plot *p, const struct svg_point *pt)
{
    return p->xscale == SVG_LINEAR || pt->x > 0;
}

/* A round step (1, 2 or 5 times a power of ten) near span / 5. */
static double nice_step(double span)
{
    double raw = span / 5.0;
    double mag = pow(10.0, floor(log10(raw)));
    double f = raw / mag;
    return (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * mag;
}

/* Widens lo..hi to whole steps, or around a lone value. */
static void round_range(double *lo, double *hi, bool fixed)
{
    if (*hi - *lo < 1e-12 * (fabs(*hi) + 1.0)) {
        if (*lo != 0)
            *lo -= 1.0; /* all zero stays a range from zero */
        *hi += 1.0;
    }
    if (fixed)
        return;
    double step = nice_step(*hi - *lo);
    *lo = floor(*lo / step + 1e-9) * step;
    *hi = ceil(*hi / step - 1e-9) * step;
}

/* Which y axis a series uses: 0 left, 1 right. */
static int yaxis(const struct svg_plot *p, const struct svg_series *s)
{
    return p->y2label && (s->style & SVG_Y2) ? 1 : 0;
}

static int fit_frame(const struct svg_plot *p, size_t legend_rows, struct frame *fr)
{
    bool any = false;
    double xlo = INFINITY, xhi = -INFINITY;
    double ylo[2] = {INFINITY, INFINITY}, yhi[2] = {-INFINITY, -INFINITY};

    for (size_t i = 0; i < p->nseries; i++) {
        const struct svg_series *s = &p->series[i];
        int ax = yaxis(p, s);
        for (size_t k = 0; k < s->n; k++) {
            const struct svg_point *pt = &s->pt[k];
            if (!point_shown(p, pt))
                continue;
            double x = xaxis(p, pt->x);
            any = true;
            xlo = fmin(xlo, x);
            xhi = fmax(xhi, x);
            ylo[ax] = fmin(ylo[ax], fmin(pt->y, pt->lo));
            yhi[ax] = fmax(yhi[ax], fmax(pt->y, pt->hi));
        }
    }
    if (!any)
        return -EINVAL;
    if (p->xfixed) {
        xlo = xaxis(p, p->xlo);
        xhi = xaxis(p, p->xhi);
    }
    if (p->xscale == SVG_LINEAR) {
        round_range(&xlo, &xhi, p->xfixed);
    } else if (!p->xfixed) {
        /* Whole decades or octaves. */
        xlo = floor(xlo + 1e-9);
        xhi = ceil(xhi - 1e-9);
        if (xhi - xlo < 1.0)
            xhi = xlo + 1.0;
    }
    for (int ax = 0; ax < 2; ax++) {
        bool fixed = ax ? p->y2fixed : p->yfixed;
        if (fixed) {
            ylo[ax] = ax ? p->y2lo : p->ylo;
            yhi[ax] = ax ? p->y2hi : p->yhi;
        } else if (!isfinite(ylo[ax])) {
            ylo[ax] = 0; /* an axis without data */
            yhi[ax] = 1;
        } else if (ylo[ax] >= 0) {
            ylo[ax] = 0; /* counts and ratios read best from zero */
        }
        round_range(&ylo[ax], &yhi[ax], fixed);
        fr->ylo[ax] = ylo[ax];
        fr->yhi[ax] = yhi[ax];
    }
    fr->xlo = xlo;
    fr->xhi = xhi;
    fr->left = 72;
    fr->right = p->width - (p->y2label ? 72.0 : 24.0);
    fr->top = p->subtitle ? 62 : 44;
    fr->bottom = p->height - 52.0 - 18.0 * (double)legend_rows;
    return 0;
}

static double px(const struct frame *fr, double xa)
{
    double w = fr->right - fr->left - 2 * PAD_X;
    return fr->left + PAD_X + (xa - fr->xlo) / (fr->xhi - fr->xlo) * w;
}

static double py(const struct frame *fr, int ax, double y)
{
    double h = fr->bottom - fr->top - 2 * PAD_Y;
    return fr->bottom - PAD_Y - (y - fr->ylo[ax]) / (fr->yhi[ax] - fr->ylo[ax]) * h;
}

/* Writes s as XML character data. */
static void put_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            /* XML 1.0 forbids most control characters, even escaped. */
            fputc(c < 0x20 && c != '\t' && c != '\n' ? '?' : c, f);
            break;
        }
    }
}

static void put_label(FILE *f, double x, double y, const char *anchor, const char *extra,
                      const char *text)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s>", x, y, anchor, extra);
    put_text(f, text);
    fputs("</text>\n", f);
}

static void fmt_linear(char *buf, size_t len, double v, double step)
{
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (fabs(v) < step * 1e-6)
        v = 0; /* never "-0" */
    snprintf(buf, len, "%.*f", dec, v);
}

static void fmt_power(char *buf, size_t len, enum svg_scale scale, int e)
{
    double v = pow(scale == SVG_LOG2 ? 2.0 : 10.0, e);
    if (v >= 1e-4 && v < 1e7)
        snprintf(buf, len, "%.10g", v);
    else if (scale == SVG_LOG2)
        snprintf(buf, len, "2^%d", e);
    else
        snprintf(buf, len, "1e%d", e);
}

static void grid_line(FILE *f, double x1, double y1, double x2, double y2)
{
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", x1,
            y1, x2, y2);
}

/* Ticks of y axis ax, with grid lines for the left one only. */
static void write_yticks(const struct frame *fr, int ax, FILE *f)
{
    char buf[64];
    double step = nice_step(fr->yhi[ax] - fr->ylo[ax]);
    long k0 = (long)ceil(fr->ylo[ax] / step - 1e-9), k1 = (long)floor(fr->yhi[ax] / step + 1e-9);

    for (long k = k0; k <= k1; k++) {
        double y = py(fr, ax, (double)k * step);
        fmt_linear(buf, sizeof(buf), (double)k * step, step);
        if (ax == 0) {
            grid_line(f, fr->left, y, fr->right, y);
            put_label(f, fr->left - 6, y + 4, "end", "", buf);
        } else {
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n",
                    fr->right, y, fr->right + 4, y);
            put_label(f, fr->right + 7, y + 4, "start", "", buf);
        }
    }
}

static void write_ylabel(FILE *f, double cx, double cy, const char *label)
{
    fprintf(f,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\" "
            "transform=\"rotate(-90 %.1f %.1f)\">",
            cx, cy, cx, cy);
    put_text(f, label);
    fputs("</text>\n", f);
}

static void write_axes(const struct svg_plot *p, const struct frame *fr, FILE *f)
{
    char buf[64];

    fprintf(f, "<g font-size=\"12\" fill=\"#333\">\n");
    write_yticks(fr, 0, f);
    if (p->y2label)
        write_yticks(fr, 1, f);
    if (p->xscale == SVG_LINEAR) {
        double step = nice_step(fr->xhi - fr->xlo);
        long k0 = (long)ceil(fr->xlo / step - 1e-9), k1 = (long)floor(fr->xhi / step + 1e-9);
        for (long k = k0; k <= k1; k++) {
            double x = px(fr, (double)k * step);
            grid_line(f, x, fr->top, x, fr->bottom);
            fmt_linear(buf, sizeof(buf), (double)k * step, step);
            put_label(f, x, fr->bottom + 16, "middle", "", buf);
        }
    } else {
        int e0 = (int)ceil(fr->xlo - 1e-9), e1 = (int)floor(fr->xhi + 1e-9);
        int every = (e1 - e0) / MAX_TICKS + 1;
        for (int e = e0; e <= e1; e++) {
            double x = px(fr, e);
            grid_line(f, x, fr->top, x, fr->bottom);
            if ((e - e0) % every != 0)
                continue;
            fmt_power(buf, sizeof(buf), p->xscale, e);
            put_label(f, x, fr->bottom + 16, "middle", "", buf);
        }
    }
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
            "stroke=\"#444\"/>\n",
            fr->left, fr->top, fr->right - fr->left, fr->bottom - fr->top);
    if (p->xlabel) {
        const char *log = p->xscale == SVG_LOG2    ? " (log scale, base 2)"
                          : p->xscale == SVG_LOG10 ? " (log scale)"
                                                   : "";
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">",
                (fr->left + fr->right) / 2, fr->bottom + 38);
        put_text(f, p->xlabel);
        put_text(f, log);
        fputs("</text>\n", f);
    }
    if (p->ylabel)
        write_ylabel(f, 18, (fr->top + fr->bottom) / 2, p->ylabel);
    if (p->y2label)
        write_ylabel(f, p->width - 14.0, (fr->top + fr->bottom) / 2, p->y2label);
    fputs("</g>\n", f);
}

static void write_marker(FILE *f, size_t si, double x, double y, const char *color)
{
    switch (si % 3) {
    case 0:
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", x, y, color);
        break;
    case 1:
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"7\" height=\"7\" fill=\"%s\"/>\n", x - 3.5,
                y - 3.5, color);
        break;
    default:
        fprintf(f, "<path d=\"M%.1f %.1fl4.5 4.5l-4.5 4.5l-4.5 -4.5z\" fill=\"%s\"/>\n", x, y - 4.5,
                color);
        break;
    }
}

static void write_series(const struct svg_plot *p, const struct frame *fr, size_t si, FILE *f)
{
    const struct svg_series *s = &p->series[si];
    const char *color = palette[si % NPALETTE];
    int ax = yaxis(p, s);

    if (s->style & SVG_ERR_BAND) {
        bool first = true;
        fputs("<path d=\"", f);
        for (size_t k = 0; k < s->n; k++) {
            if (!point_shown(p, &s->pt[k]))
                continue;
            fprintf(f, "%c%.1f %.1f ", first ? 'M' : 'L', px(fr, xaxis(p, s->pt[k].x)),
                    py(fr, ax, s->pt[k].hi));
            first = false;
        }
        for (size_t k = s->n; k-- > 0;) {
            if (point_shown(p, &s->pt[k]))
                fprintf(f, "L%.1f %.1f ", px(fr, xaxis(p, s->pt[k].x)), py(fr, ax, s->pt[k].lo));
        }
        fprintf(f, "Z\" fill=\"%s\" fill-opacity=\"0.18\" stroke=\"none\"/>\n", color);
    }
    if (s->style & SVG_ERR_BARS) {
        for (size_t k = 0; k < s->n; k++) {
            const struct svg_point *pt = &s->pt[k];
            if (!point_shown(p, pt) || !pt->range)
                continue;
            double x = px(fr, xaxis(p, pt->x)), y0 = py(fr, ax, pt->lo), y1 = py(fr, ax, pt->hi);
            fprintf(f,
                    "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fh8M%.1f %.1fh8\" stroke=\"%s\" "
                    "fill=\"none\"/>\n",
                    x, y0, y1, x - 4, y0, x - 4, y1, color);
        }
    }
    if (s->style & SVG_LINE) {
        bool first = true;
        fputs("<path d=\"", f);
        for (size_t k = 0; k < s->n; k++) {
            if (!point_shown(p, &s->pt[k]))
                continue;
            fprintf(f, "%c%.1f %.1f ", first ? 'M' : 'L', px(fr, xaxis(p, s->pt[k].x)),
                    py(fr, ax, s->pt[k].y));
            first = false;
        }
        fprintf(f, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", color,
                s->style & SVG_DASHED ? " stroke-dasharray=\"6 4\"" : "");
    }
    if (s->style & SVG_MARKERS) {
        for (size_t k = 0; k < s->n; k++)
            if (point_shown(p, &s->pt[k]))
                write_marker(f, si, px(fr, xaxis(p, s->pt[k].x)), py(fr, ax, s->pt[k].y), color);
    }
}

static void legend_corner(const struct frame *fr, enum svg_legend where, double w, double h,
                          double *x0, double *y0)
{
    bool right = where == SVG_LEGEND_TOP_RIGHT || where == SVG_LEGEND_BOTTOM_RIGHT;
    bool bottom = where == SVG_LEGEND_BOTTOM_LEFT || where == SVG_LEGEND_BOTTOM_RIGHT;
    *x0 = right ? fr->right - 10 - w : fr->left + 10;
    *y0 = bottom ? fr->bottom - 10 - h : fr->top + 10;
}

static bool in_box(double x, double y, double bx, double by, double w, double h)
{
    return x >= bx - 4 && x <= bx + w + 4 && y >= by - 4 && y <= by + h + 4;
}

/* How much of the drawing a legend box at bx, by would hide: points, and
 * samples along the lines and range bars between them. */
static size_t legend_cover(const struct svg_plot *p, const struct frame *fr, double bx, double by,
                           double w, double h)
{
    size_t hits = 0;
    for (size_t i = 0; i < p->nseries; i++) {
        const struct svg_series *s = &p->series[i];
        int ax = yaxis(p, s);
        bool prev = false;
        double lx = 0, ly = 0;
        for (size_t k = 0; k < s->n; k++) {
            const struct svg_point *pt = &s->pt[k];
            if (!point_shown(p, pt))
                continue;
            double x = px(fr, xaxis(p, pt->x)), y = py(fr, ax, pt->y);
            hits += 4 * in_box(x, y, bx, by, w, h);
            for (int t = 1; prev && (s->style & SVG_LINE) && t < 16; t++)
                hits += in_box(lx + (x - lx) * t / 16, ly + (y - ly) * t / 16, bx, by, w, h);
            for (int t = 0; pt->range && t <= 8; t++)
                hits += in_box(x, py(fr, ax, pt->lo + (pt->hi - pt->lo) * t / 8), bx, by, w, h);
            prev = true;
            lx = x;
            ly = y;
        }
    }
    return hits;
}

/* A legend entry's width: the sample, and 6.5 px a character of 12 px text. */
static double entry_width(const struct svg_series *s)
{
    return 44 + 6.5 * (double)strlen(s->name);
}

/* Rows the legend takes below the plot, entries laid out left to right. */
static size_t below_rows(const struct svg_plot *p, double left, double right)
{
    size_t rows = 0;
    double x = right;
    for (size_t i = 0; i < p->nseries; i++) {
        if (!p->series[i].name)
            continue;
        double w = entry_width(&p->series[i]);
        if (rows == 0 || x + w > right) {
            rows++;
            x = left;
        }
        x += w + 12;
    }
    return rows;
}

/* Draws entry i with its text baseline at y, starting at x. */
static void write_entry(const struct svg_plot *p, size_t i, double x, double y, FILE *f)
{
    const struct svg_series *s = &p->series[i];
    const char *color = palette[i % NPALETTE];
    if (s->style & SVG_ERR_BAND)
        fprintf(f,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"24\" height=\"10\" fill=\"%s\" "
                "fill-opacity=\"0.18\"/>\n",
                x + 8, y - 9, color);
    if (s->style & SVG_LINE)
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                "stroke-width=\"2\"%s/>\n",
                x + 8, y - 4, x + 32, y - 4, color,
                s->style & SVG_DASHED ? " stroke-dasharray=\"6 4\"" : "");
    if (s->style & SVG_MARKERS)
        write_marker(f, i, x + 20, y - 4, color);
    put_label(f, x + 38, y, "start", " fill=\"#222\"", s->name);
}

/* The legend box's size; false when no series has a name. */
static bool legend_size(const struct svg_plot *p, double *w, double *h)
{
    size_t n = 0;
    *w = 0;
    for (size_t i = 0; i < p->nseries; i++) {
        if (!p->series[i].name)
            continue;
        n++;
        *w = fmax(*w, entry_width(&p->series[i]));
    }
    *h = 8 + 18.0 * (double)n;
    return n > 0;
}

/* The corner for AUTO that hides the least, or SVG_LEGEND_BELOW when
 * every corner would hide some data. */
static enum svg_legend legend_place(const struct svg_plot *p, const struct frame *fr)
{
    double w, h;
    if (p->legend != SVG_LEGEND_AUTO || !legend_size(p, &w, &h))
        return p->legend;
    for (int c = SVG_LEGEND_TOP_LEFT; c <= SVG_LEGEND_BOTTOM_RIGHT; c++) {
        double bx, by;
        legend_corner(fr, (enum svg_legend)c, w, h, &bx, &by);
        if (legend_cover(p, fr, bx, by, w, h) == 0)
            return (enum svg_legend)c;
    }
    return SVG_LEGEND_BELOW;
}

static void write_legend(const struct svg_plot *p, const struct frame *fr, enum svg_legend where,
                         FILE *f)
{
    double w, h;
    if (!legend_size(p, &w, &h))
        return;
    fputs("<g font-size=\"12\">\n", f);
    if (where == SVG_LEGEND_BELOW) {
        double x = fr->left, y = fr->bottom + 38 + (p->xlabel ? 22 : 0);
        bool first = true;
        for (size_t i = 0; i < p->nseries; i++) {
            if (!p->series[i].name)
                continue;
            double ew = entry_width(&p->series[i]);
            if (!first && x + ew > fr->right) {
                x = fr->left;
                y += 18;
            }
            write_entry(p, i, x, y, f);
            x += ew + 12;
            first = false;
        }
    } else {
        double x0, y0;
        legend_corner(fr, where, w, h, &x0, &y0);
        fprintf(f,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fff\" "
                "fill-opacity=\"0.9\" stroke=\"#bbb\"/>\n",
                x0, y0, w, h);
        double y = y0 + 16;
        for (size_t i = 0; i < p->nseries; i++) {
            if (!p->series[i].name)
                continue;
            write_entry(p, i, x0, y, f);
            y += 18;
        }
    }
    fputs("</g>\n", f);
}

int svg_plot_write(const struct svg_plot *p, FILE *f)
{
    struct frame fr;

    if (fit_frame(p, 0, &fr) != 0)
        return -EINVAL;
    enum svg_legend where = legend_place(p, &fr);
    if (where == SVG_LEGEND_BELOW)
        fit_frame(p, below_rows(p, fr.left, fr.right) + (p->xlabel ? 1 : 0), &fr);
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%u\" "
            "height=\"%u\" viewBox=\"0 0 %u %u\" font-family=\"Helvetica, Arial, sans-serif\">\n",
            p->width, p->height, p->width, p->height);
    if (p->title) {
        fputs("<title>", f);
        put_text(f, p->title);
        fputs("</title>\n", f);
    }
    fprintf(f, "<rect width=\"%u\" height=\"%u\" fill=\"#fff\"/>\n", p->width, p->height);
    fprintf(f,
            "<defs><clipPath id=\"plotarea\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
            "height=\"%.1f\"/></clipPath></defs>\n",
            fr.left, fr.top, fr.right - fr.left, fr.bottom - fr.top);
    if (p->title)
        put_label(f, p->width / 2.0, 24, "middle", " font-size=\"16\" font-weight=\"bold\"",
                  p->title);
    if (p->subtitle)
        put_label(f, p->width / 2.0, 44, "middle", " font-size=\"12\" fill=\"#555\"", p->subtitle);
    write_axes(p, &fr, f);
    fputs("<g clip-path=\"url(#plotarea)\">\n", f);
    for (size_t i = 0; i < p->nseries; i++)
        write_series(p, &fr, i, f);
    fputs("</g>\n", f);
    write_legend(p, &fr, where, f);
    fputs("</svg>\n", f);
    return fflush(f) != 0 || ferror(f) ? -EIO : 0;
}

int svg_plot_save(const struct svg_plot *p, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    int rc = svg_plot_write(p, f);
    if (fclose(f) != 0 && rc == 0)
        rc = -EIO;
    if (rc != 0)
        remove(path);
    return rc;
}
