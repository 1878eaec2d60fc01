/*  fs_outbox - writes emitted events into the service's outbox, inside the caller's transaction. */
#include "finestra.h"

int
fs_outbox_emit (fs_pg_t *pg, const char *schema, const char *source, fs_routes_t *routes,
                const fs_type_t *ptype, const void *payload, const fs_envelope_t *cause,
                char *id_out, fs_proto_error_t *err)
{
    assert (ptype && ptype->wire);
    const char *const *consumers;
    size_t nconsumers = fs_routes_consumers (routes, ptype->wire, &consumers);

    char *data = NULL;
    size_t len = 0;
    char id [FS_UUID_LEN + 1];
    if (fs_envelope_encode (source, ptype, payload, cause, &data, &len, id, err)) {
        fs_error ("event not emitted: invalid payload", "type", ptype->wire,
                  "field", err->field, "reason", err->message);
        return -1;
    }
    if (id_out)
        memcpy (id_out, id, sizeof id);
    if (nconsumers == 0) {
        //  Not an error: a type may be emitted before anyone consumes it
        fs_debug ("event unrouted", "type", ptype->wire, "id", id);
        free (data);
        return 0;
    }
    //  Consumers are service names from a fixed table: safe inside an array literal
    char array [256] = "{";
    for (size_t i = 0; i < nconsumers; i++) {
        strncat (array, consumers [i], sizeof array - strlen (array) - 2);
        strncat (array, i + 1 < nconsumers ? "," : "}", sizeof array - strlen (array) - 1);
    }
    const char *correlation = cause ? cause->hdr.correlation_id : id;
    //  One round trip: the rows, and the NOTIFY that wakes the relay when this transaction
    //  commits (duplicates fold into one). A data-modifying CTE always runs to completion
    char sql [320], channel [96];
    snprintf (sql, sizeof sql,
              "WITH o AS (INSERT INTO \"%s\".outbox (msg_id, consumer, type, correlation_id,"
              " envelope) SELECT $1, unnest ($2::text[]), $3, $4, $5) SELECT pg_notify ($6, '')",
              schema);
    snprintf (channel, sizeof channel, "finestra_outbox_%s", schema);
    const char *values [6] = { id, array, ptype->wire, correlation, data, channel };
    int lengths [6] = { 0, 0, 0, 0, (int) len, 0 };
    int formats [6] = { 0, 0, 0, 0, 1, 0 };
    PGresult *result = fs_pg_execb (pg, sql, 6, values, lengths, formats, 0);
    free (data);
    if (!result)
        return -1;
    PQclear (result);
    return 0;
}
