/*  fs_migrate - applies versioned SQL migrations, once each, in order, each inside a
    transaction, recorded in <schema>.schema_migrations. Safe to run concurrently
    (a transaction-scoped advisory lock serialises runners). */
#ifndef FS_MIGRATE_H_INCLUDED
#define FS_MIGRATE_H_INCLUDED

/* Creates `schema` if needed and applies, with search_path set to it, the migrations of
   `track` (e.g. "common", "intake") not yet recorded for that track. The list ends with an
   entry whose sql is NULL. A recorded migration whose text changed is an error (checksum).
   Returns the number applied, or -1 with fs_pg_error set (the failing one rolled back). */
int fs_migrate_run (fs_pg_t *pg, const char *schema, const char *track,
                    const fs_migration_t *migrations);

#endif
