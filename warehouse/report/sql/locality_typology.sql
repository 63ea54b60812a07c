-- Localities of the county, latest delineation, in Swedish alphabetical order of their municipality (ICU
-- collation 'sv': ... Z, Å, Ä, Ö), then by population.
with dim as (
    select municipality_code, municipality_name, is_study_area from marts.dim_municipalities
)

select t.locality_code, t.locality_name, t.municipality_code, t.year, t.typology_code, t.typology_name_en,
       t.size_class, t.population, t.growth_class, t.previous_year, t.growth_pct_per_year, t.density_class,
       t.density_per_km2, t.function_class, t.municipality_job_ratio, t.function_basis,
       coalesce(t.locality_job_ratio, t.municipality_job_ratio) as function_job_ratio, t.accessibility_class,
       t.municipality_category, t.category_basis, t.rule_applied,
       coalesce(dim.municipality_name, t.municipality_code) as municipality_name,
       coalesce(dim.is_study_area, false) as is_study_area{{ prov }}
from marts.mart_locality_typology as t
left join dim using (municipality_code)
where t.year = (select max(year) from marts.mart_locality_typology) and starts_with(t.municipality_code, $county)
order by municipality_name collate sv, t.population desc nulls last, t.locality_code
