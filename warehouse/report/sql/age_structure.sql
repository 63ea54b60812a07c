-- Age indicators of the county's municipalities, its study area and the county, latest year with age data.
select area_type, area_code, area_name, year, population_total, median_age, share_0_19_pct, share_20_64_pct,
       share_65_plus_pct, share_80_plus_pct, dependency_ratio, compare_year, median_age_change,
       completeness_note{{ prov }}
from marts.mart_population_age_structure
where county_code = $county
    and year = (
        select max(year) from marts.mart_population_age_structure
        where county_code = $county and population_total is not null
    )
order by case area_type when 'municipality' then 0 when 'study_area' then 1 else 2 end, area_code
