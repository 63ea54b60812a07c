-- Growth by municipality category: the explicit periods (labels like '2014-2024'), then the 10- and 5-year
-- horizons ending in the latest year, of the focus county.
select group_type, group_code, category, category_basis, members, horizon_label, start_year, end_year,
       growth_pct_pooled, growth_pct_unweighted_mean{{ prov }}
from marts.mart_population_growth_by_category
where county_code = $county
  and (horizon_label like '%-%'
       or horizon_label in ('10y', '5y')
          and end_year = (
              select max(end_year) from marts.mart_population_growth_by_category where county_code = $county
          ))
order by horizon_label not like '%-%', start_year, end_year, group_type, group_code
