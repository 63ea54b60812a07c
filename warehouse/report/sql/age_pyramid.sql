-- The county's population by five-year age group and sex, latest year with age data (men and women only).
select age_group, age_group_from, sex, year, population, share_of_population_pct{{ prov }}
from marts.mart_population_age_groups
where area_type = 'county' and area_code = $county and sex in ('men', 'women') and population is not null
    and year = (
        select max(year) from marts.mart_population_age_groups
        where area_type = 'county' and area_code = $county and population is not null
    )
order by age_group_from desc, sex
