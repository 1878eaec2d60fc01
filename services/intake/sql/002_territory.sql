-- intake: the territory, operator-editable data: districts, neighbourhoods, the social
-- services centre serving each neighbourhood, and postcode -> neighbourhood lookups.
CREATE TABLE districts (
    code text PRIMARY KEY,                          -- "01".."10"
    name text NOT NULL
);
CREATE TABLE neighbourhoods (
    code          text PRIMARY KEY,                 -- "01".."73", unique city-wide
    district_code text NOT NULL REFERENCES districts (code),
    name          text NOT NULL
);
CREATE TABLE centres (
    code          text PRIMARY KEY,
    name          text NOT NULL,
    district_code text NOT NULL REFERENCES districts (code),
    demo          boolean NOT NULL DEFAULT false    -- true: invented for the demo city
);
CREATE TABLE centre_neighbourhoods (
    neighbourhood_code text PRIMARY KEY REFERENCES neighbourhoods (code),
    centre_code        text NOT NULL REFERENCES centres (code)
);
CREATE TABLE postcodes (
    postcode           text PRIMARY KEY,
    neighbourhood_code text NOT NULL REFERENCES neighbourhoods (code),
    demo               boolean NOT NULL DEFAULT false
);
