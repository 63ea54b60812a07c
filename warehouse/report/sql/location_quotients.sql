-- Location quotients against the reference economy on the var employment_basis, latest year, without the
-- all-sector total.
select region_code, year, sni_group_code, lq_vs_reference as lq{{ prov }}
from marts.mart_sector_location_quotients
where basis = $basis and region_level = 'municipality' and starts_with(region_code, $county)
  and sni_group_code <> 'A-U+US'
  and year = (select max(year) from marts.mart_sector_location_quotients where basis = $basis)
order by region_code, sni_group_code
