-- Population per year of the county's municipalities (the county row itself is not a panel).
select region_name as municipality, year, population{{ prov }}
from marts.fct_population
where region_level = 'municipality' and starts_with(region_code, $county) and population is not null
order by municipality, year
