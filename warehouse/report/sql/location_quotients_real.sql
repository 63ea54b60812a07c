-- Location quotients against the reference economy from real figures only (no synthetic input in the row) on the
-- var employment_basis: every county and the county's municipalities, each in its latest year with real data
-- (SCB RAMS by county 2018, municipal FO05 files), the counties first.
select region_code, region_level, year, sni_group_code, lq_vs_reference as lq{{ prov }}
from marts.mart_sector_location_quotients
where basis = $basis and not is_synthetic and lq_vs_reference is not null
  and (region_level = 'county' or (region_level = 'municipality' and starts_with(region_code, $county)))
qualify year = max(year) over (partition by region_code)
order by region_level, region_code, sni_group_code
