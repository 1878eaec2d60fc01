-- referral-router: its own copy of the city's districts and neighbourhoods, loaded by
-- load-directory from the same CSV intake loads (each service owns its schema: data crosses
-- as files, not cross-schema reads). It checks the services' territory codes and tells a
-- neighbourhood's district.
CREATE TABLE districts (
    code text PRIMARY KEY,
    name text NOT NULL
);
CREATE TABLE neighbourhoods (
    code          text PRIMARY KEY,
    district_code text NOT NULL REFERENCES districts (code),
    name          text NOT NULL
);
