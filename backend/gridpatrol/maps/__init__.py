"""Map read models: vector tiles of grids (a choropleth of their cases) and of case points
(clustered when zoomed out), made by PostGIS (ST_AsMVT), and the small lookups a map needs."""
