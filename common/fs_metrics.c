/*  fs_metrics - a registry of counters and histograms, updated with relaxed atomics. */
#include "finestra.h"

/* Upper bounds of the histogram buckets, in seconds; +Inf is the last bucket. */
static const double s_bounds [] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
static const char *s_bound_names [] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
    "1", "2.5", "5", "10", "+Inf"
};
#define S_BUCKETS (sizeof s_bounds / sizeof s_bounds [0] + 1)
/* Observations are clamped to this, so the sum in nanoseconds cannot overflow soon. */
#define S_OBSERVE_MAX 1e9

typedef enum { S_COUNTER, S_HISTOGRAM } s_kind_t;

struct fs_counter_s {
    atomic_uint_least64_t value;            /* the count */
};

struct fs_histogram_s {
    atomic_uint_least64_t buckets [S_BUCKETS];  /* observations per bucket, not cumulative */
    atomic_uint_least64_t sum_ns;           /* sum of observations in nanoseconds */
};

/* One labelled series of a family; the counter or histogram lives inside it. */
typedef struct s_series_s {
    char *labels;               /* label pairs as given, "" for none */
    fs_counter_t counter;       /* the value, for a counter family */
    fs_histogram_t histogram;   /* the value, for a histogram family */
    struct s_series_s *next;    /* next series of the family, in registration order */
} s_series_t;

/* Every series sharing one metric name: rendered together under one HELP and TYPE. */
typedef struct s_family_s {
    char *name;                 /* metric name */
    char *help;                 /* HELP text of the first registration */
    s_kind_t kind;              /* counter or histogram, the same for every series */
    s_series_t *series;         /* first series */
    s_series_t *last;           /* last series, where the next one is appended */
    struct s_family_s *next;    /* next family, in registration order */
} s_family_t;

struct fs_metrics_s {
    char *service;              /* value of the service label on every series */
    s_family_t *families;       /* first family */
    s_family_t *last;           /* last family */
};

fs_metrics_t *
fs_metrics_new (const char *service)
{
    fs_metrics_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->service = strdup (service? service: "finestra");
    if (!self->service)
        fs_metrics_destroy (&self);
    return self;
}

void
fs_metrics_destroy (fs_metrics_t **self_p)
{
    assert (self_p);
    fs_metrics_t *self = *self_p;
    if (!self)
        return;
    s_family_t *family = self->families;
    while (family) {
        s_series_t *series = family->series;
        while (series) {
            s_series_t *next = series->next;
            free (series->labels);
            free (series);
            series = next;
        }
        s_family_t *next = family->next;
        free (family->name);
        free (family->help);
        free (family);
        family = next;
    }
    free (self->service);
    free (self);
    *self_p = NULL;
}

//  Metric names are literals in the code, so a bad one is a programmer error.
static bool
s_valid_name (const char *name)
{
    if (!*name || (*name >= '0' && *name <= '9'))
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
           || (*c >= '0' && *c <= '9') || *c == '_' || *c == ':'))
            return false;
    return true;
}

//  Finds or adds the series name{labels}; NULL if out of memory or the kind conflicts.
static s_series_t *
s_register (fs_metrics_t *self, const char *name, const char *help, const char *labels,
            s_kind_t kind)
{
    assert (self);
    bool valid = name && s_valid_name (name);
    assert (valid);
    if (!valid)
        return NULL;            //  where assertions are off, the metric is simply not counted
    if (!labels)
        labels = "";
    s_family_t *family = self->families;
    while (family && !streq (family->name, name))
        family = family->next;
    if (family) {
        //  One name is one metric: counting it as two kinds is a programmer error.
        assert (family->kind == kind);
        if (family->kind != kind)
            return NULL;
        for (s_series_t *series = family->series; series; series = series->next)
            if (streq (series->labels, labels))
                return series;
    }
    else {
        family = calloc (1, sizeof *family);
        if (!family)
            return NULL;
        family->name = strdup (name);
        family->help = strdup (help? help: "");
        family->kind = kind;
        if (!family->name || !family->help) {
            free (family->name);
            free (family->help);
            free (family);
            return NULL;
        }
        if (self->last)
            self->last->next = family;
        else
            self->families = family;
        self->last = family;
    }
    s_series_t *series = calloc (1, sizeof *series);
    if (!series)
        return NULL;            //  an empty family is still rendered correctly
    series->labels = strdup (labels);
    if (!series->labels) {
        free (series);
        return NULL;
    }
    if (family->last)
        family->last->next = series;
    else
        family->series = series;
    family->last = series;
    return series;
}

fs_counter_t *
fs_metrics_counter (fs_metrics_t *self, const char *name, const char *help, const char *labels)
{
    s_series_t *series = s_register (self, name, help, labels, S_COUNTER);
    return series? &series->counter: NULL;
}

fs_histogram_t *
fs_metrics_histogram (fs_metrics_t *self, const char *name, const char *help,
                      const char *labels)
{
    s_series_t *series = s_register (self, name, help, labels, S_HISTOGRAM);
    return series? &series->histogram: NULL;
}

//  Updates accept NULL (registration ran out of memory): the service runs on uncounted.
void
fs_counter_add (fs_counter_t *counter, uint64_t n)
{
    if (counter)
        atomic_fetch_add_explicit (&counter->value, n, memory_order_relaxed);
}

uint64_t
fs_counter_value (fs_counter_t *counter)
{
    return counter? atomic_load_explicit (&counter->value, memory_order_relaxed): 0;
}

void
fs_histogram_observe (fs_histogram_t *histogram, double seconds)
{
    if (!histogram)
        return;
    if (!(seconds > 0))
        seconds = 0;            //  negative or NaN: a clock step, not a real duration
    if (seconds > S_OBSERVE_MAX)
        seconds = S_OBSERVE_MAX;
    size_t bucket = 0;
    while (bucket < S_BUCKETS - 1 && seconds > s_bounds [bucket])
        bucket++;
    atomic_fetch_add_explicit (&histogram->buckets [bucket], 1, memory_order_relaxed);
    atomic_fetch_add_explicit (&histogram->sum_ns, (uint64_t) (seconds * 1e9 + 0.5),
                               memory_order_relaxed);
}

//  Writes text with the given characters escaped (HELP escapes \ and newline; label values
//  also ").
static void
s_put_escaped (FILE *out, const char *text, bool quotes)
{
    for (const char *c = text; *c; c++) {
        if (*c == '\\')
            fputs ("\\\\", out);
        else
        if (*c == '\n')
            fputs ("\\n", out);
        else
        if (*c == '"' && quotes)
            fputs ("\\\"", out);
        else
            fputc (*c, out);
    }
}

//  Writes {service="x",labels[,le="b"]}.
static void
s_put_labels (FILE *out, fs_metrics_t *self, const char *labels, const char *le)
{
    fputs ("{service=\"", out);
    s_put_escaped (out, self->service, true);
    fputc ('"', out);
    if (*labels)
        fprintf (out, ",%s", labels);
    if (le)
        fprintf (out, ",le=\"%s\"", le);
    fputc ('}', out);
}

//  Seconds from nanoseconds, exactly, without trailing zeros: 1500000 -> "0.0015".
static void
s_put_seconds (FILE *out, uint64_t ns)
{
    uint64_t whole = ns / 1000000000u, fraction = ns % 1000000000u;
    fprintf (out, "%" PRIu64, whole);
    if (fraction) {
        char digits [16];
        snprintf (digits, sizeof digits, "%09" PRIu64, fraction);
        size_t len = strlen (digits);
        while (digits [len - 1] == '0')
            len--;
        fprintf (out, ".%.*s", (int) len, digits);
    }
}

static void
s_render_histogram (FILE *out, fs_metrics_t *self, s_family_t *family, s_series_t *series)
{
    uint64_t cumulative = 0;
    for (size_t bucket = 0; bucket < S_BUCKETS; bucket++) {
        cumulative += atomic_load_explicit (&series->histogram.buckets [bucket],
                                            memory_order_relaxed);
        fprintf (out, "%s_bucket", family->name);
        s_put_labels (out, self, series->labels, s_bound_names [bucket]);
        fprintf (out, " %" PRIu64 "\n", cumulative);
    }
    fprintf (out, "%s_sum", family->name);
    s_put_labels (out, self, series->labels, NULL);
    fputc (' ', out);
    s_put_seconds (out, atomic_load_explicit (&series->histogram.sum_ns, memory_order_relaxed));
    //  The count is the +Inf bucket as read above, so the two always agree.
    fprintf (out, "\n%s_count", family->name);
    s_put_labels (out, self, series->labels, NULL);
    fprintf (out, " %" PRIu64 "\n", cumulative);
}

char *
fs_metrics_render (fs_metrics_t *self)
{
    assert (self);
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out)
        return NULL;
    for (s_family_t *family = self->families; family; family = family->next) {
        fprintf (out, "# HELP %s", family->name);
        if (*family->help) {
            fputc (' ', out);
            s_put_escaped (out, family->help, false);
        }
        fprintf (out, "\n# TYPE %s %s\n", family->name,
                 family->kind == S_COUNTER? "counter": "histogram");
        for (s_series_t *series = family->series; series; series = series->next) {
            if (family->kind == S_HISTOGRAM)
                s_render_histogram (out, self, family, series);
            else {
                fputs (family->name, out);
                s_put_labels (out, self, series->labels, NULL);
                fprintf (out, " %" PRIu64 "\n",
                         atomic_load_explicit (&series->counter.value, memory_order_relaxed));
            }
        }
    }
    bool failed = ferror (out);
    if (fclose (out) != 0 || failed) {
        free (text);
        return NULL;
    }
    return text;
}
