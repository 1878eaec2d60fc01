/*  router_directory - the loaded directory in memory: the active services with their
    criteria, and the Z-code mapping, read from PostgreSQL in one snapshot. Rows go through
    the same checks as the CSV (router_service_parse), so memory never holds what a load
    would refuse. */
#include "router.h"

struct _router_directory_t {
    router_service_t *services;         /* active services, by code */
    size_t nservices;
    router_zmap_t *zmap;                /* the mapping's rows; strings point into zresult */
    size_t nzmap;
    const char **zneeds;                /* the rows' needs, ROUTER_LIST_MAX per row */
    char **zlists;                      /* each row's needs text, split in place */
    PGresult *zresult;                  /* keeps the mapping's strings alive */
    zhash_t *districts;                 /* neighbourhood code -> its district code */
};

static const char s_services_sql [] =
    "SELECT code, kind, name, territory_scope, array_to_string (territory_codes, ' '),"
    " coalesce (age_min::text, ''), coalesce (age_max::text, ''), residency,"
    " CASE WHEN any_need THEN '*' ELSE coalesce ((SELECT string_agg (need, ' ' ORDER BY need)"
    "   FROM referral_router.service_needs n WHERE n.service_code = s.code), '') END,"
    " array_to_string (conditions, ' '), criteria_text, capacity, delivery, delivery_target,"
    " CASE WHEN demo THEN 'true' ELSE 'false' END"
    " FROM referral_router.services s WHERE active ORDER BY code";

static const char s_zcodes_sql [] =
    "SELECT z.code, z.label, coalesce (string_agg (n.need, ' ' ORDER BY n.need), '')"
    " FROM referral_router.zcodes z LEFT JOIN referral_router.zcode_needs n USING (code)"
    " GROUP BY z.code, z.label ORDER BY z.code";

static int
s_read_services (router_directory_t *self, fs_pg_t *pg, char *err, size_t errlen)
{
    PGresult *result = fs_pg_exec (pg, s_services_sql, 0, NULL);
    if (!result) {
        snprintf (err, errlen, "cannot read the services: %s", fs_pg_error (pg));
        return -1;
    }
    int rows = PQntuples (result);
    self->services = (router_service_t *) calloc ((size_t) rows + 1, sizeof *self->services);
    assert (self->services);
    int rc = 0;
    for (int i = 0; i < rows && rc == 0; i++) {
        char *fields [ROUTER_SERVICE_NCOLUMNS];
        for (int c = 0; c < ROUTER_SERVICE_NCOLUMNS; c++)
            fields [c] = PQgetvalue (result, i, c);
        char why [ROUTER_ERR_MAX];
        int column = router_service_parse (fields, &self->services [self->nservices], why,
                                           sizeof why);
        if (column) {
            //  Only an edit behind load-directory's back gets here
            snprintf (err, errlen, "service %s in the database: column %s: %s", fields [0],
                      router_service_columns [column - 1], why);
            rc = -1;
        }
        else
            self->nservices++;
    }
    PQclear (result);
    return rc;
}

static int
s_read_zcodes (router_directory_t *self, fs_pg_t *pg, char *err, size_t errlen)
{
    self->zresult = fs_pg_exec (pg, s_zcodes_sql, 0, NULL);
    if (!self->zresult) {
        snprintf (err, errlen, "cannot read the Z-code mapping: %s", fs_pg_error (pg));
        return -1;
    }
    int rows = PQntuples (self->zresult);
    self->zmap = (router_zmap_t *) calloc ((size_t) rows + 1, sizeof *self->zmap);
    self->zlists = (char **) calloc ((size_t) rows + 1, sizeof *self->zlists);
    self->zneeds = (const char **) calloc ((size_t) rows * ROUTER_LIST_MAX + 1,
                                           sizeof *self->zneeds);
    assert (self->zmap && self->zlists && self->zneeds);
    for (int i = 0; i < rows; i++) {
        router_zmap_t *row = &self->zmap [i];
        row->code = PQgetvalue (self->zresult, i, 0);
        row->label = PQgetvalue (self->zresult, i, 1);
        const char **needs = self->zneeds + (size_t) i * ROUTER_LIST_MAX;
        row->needs = needs;
        self->zlists [i] = strdup (PQgetvalue (self->zresult, i, 2));
        assert (self->zlists [i]);
        char *save = NULL;
        for (char *need = strtok_r (self->zlists [i], " ", &save);
             need && row->nneeds < ROUTER_LIST_MAX; need = strtok_r (NULL, " ", &save))
            needs [row->nneeds++] = need;
    }
    self->nzmap = (size_t) rows;
    return 0;
}

static int
s_read_territory (router_directory_t *self, fs_pg_t *pg, char *err, size_t errlen)
{
    PGresult *result = fs_pg_exec (pg, "SELECT code, district_code"
                                       " FROM referral_router.neighbourhoods", 0, NULL);
    if (!result) {
        snprintf (err, errlen, "cannot read the territory: %s", fs_pg_error (pg));
        return -1;
    }
    self->districts = zhash_new ();
    assert (self->districts);
    zhash_autofree (self->districts);
    for (int i = 0; i < PQntuples (result); i++)
        zhash_insert (self->districts, PQgetvalue (result, i, 0), PQgetvalue (result, i, 1));
    PQclear (result);
    return 0;
}

router_directory_t *
router_directory_new (fs_pg_t *pg, char *err, size_t errlen)
{
    assert (pg && err);
    //  One snapshot: services and mapping as of the same commit
    if (fs_pg_run (pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL)) {
        snprintf (err, errlen, "cannot begin: %s", fs_pg_error (pg));
        fs_pg_rollback (pg);
        return NULL;
    }
    router_directory_t *self = router_directory_read (pg, err, errlen);
    fs_pg_rollback (pg);
    return self;
}

router_directory_t *
router_directory_read (fs_pg_t *pg, char *err, size_t errlen)
{
    assert (pg && err);
    router_directory_t *self = (router_directory_t *) calloc (1, sizeof *self);
    assert (self);
    bool ok = s_read_services (self, pg, err, errlen) == 0
           && s_read_zcodes (self, pg, err, errlen) == 0
           && s_read_territory (self, pg, err, errlen) == 0;
    if (!ok)
        router_directory_destroy (&self);
    return self;
}

void
router_directory_destroy (router_directory_t **self_p)
{
    assert (self_p);
    router_directory_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; self->zlists && self->zlists [i]; i++)
        free (self->zlists [i]);
    free (self->zlists);
    free (self->zneeds);
    free (self->zmap);
    PQclear (self->zresult);
    free (self->services);
    zhash_destroy (&self->districts);
    free (self);
    *self_p = NULL;
}

size_t
router_directory_size (router_directory_t *self)
{
    assert (self);
    return self->nservices;
}

const router_service_t *
router_directory_service (router_directory_t *self, size_t index)
{
    assert (self);
    return index < self->nservices ? &self->services [index] : NULL;
}

const router_service_t *
router_directory_find (router_directory_t *self, const char *code)
{
    assert (self);
    for (size_t i = 0; code && i < self->nservices; i++)
        if (streq (self->services [i].code, code))
            return &self->services [i];
    return NULL;
}

router_zcode_result_t
router_directory_zcode (router_directory_t *self, const char *code, const router_zmap_t **row,
                        char *normalized)
{
    assert (self);
    return router_zcode_lookup (self->zmap, self->nzmap, code, row, normalized);
}

const char *
router_directory_district_of (router_directory_t *self, const char *neighbourhood)
{
    assert (self);
    return neighbourhood && self->districts
         ? (const char *) zhash_lookup (self->districts, neighbourhood) : NULL;
}

size_t
router_directory_zcode_needs (router_directory_t *self, const char *const *codes,
                              size_t ncodes, const char **needs, size_t max,
                              router_zcode_result_t *results)
{
    assert (self);
    return router_zcode_needs (self->zmap, self->nzmap, codes, ncodes, needs, max, results);
}
