/*  fs_metrics - counters and latency histograms, rendered in Prometheus text format.
    Register everything at start-up, before other threads run; afterwards the registry is
    read-only and updates are lock-free atomics, so any thread may count. */
#ifndef FS_METRICS_H_INCLUDED
#define FS_METRICS_H_INCLUDED

typedef struct fs_metrics_s fs_metrics_t;
typedef struct fs_counter_s fs_counter_t;
typedef struct fs_histogram_s fs_histogram_t;

fs_metrics_t *fs_metrics_new (const char *service);
void fs_metrics_destroy (fs_metrics_t **self_p);

/* name like "finestra_events_received_total"; labels like "type=\"x\"" or NULL.
   The same name+labels twice returns the same counter. */
fs_counter_t *fs_metrics_counter (fs_metrics_t *self, const char *name, const char *help,
                                  const char *labels);
void fs_counter_add (fs_counter_t *counter, uint64_t n);
uint64_t fs_counter_value (fs_counter_t *counter);

/* Fixed buckets from 0.5 ms to 10 s. */
fs_histogram_t *fs_metrics_histogram (fs_metrics_t *self, const char *name, const char *help,
                                      const char *labels);
void fs_histogram_observe (fs_histogram_t *histogram, double seconds);

/* Prometheus text exposition (version 0.0.4); malloc'd, caller frees. Every series carries
   service="<name>". */
char *fs_metrics_render (fs_metrics_t *self);

#endif
