-- Top sectors of the latest year: the county's municipalities and the county itself, real figures first (rows
-- without a synthetic input), then the municipalities before the county.
select region_code, year, sector_rank, sni_group_code, sni_group_name_en, employed, share, comparison_year,
       rank_change{{ prov }}
from marts.mart_top_sectors
where year = (select max(year) from marts.mart_top_sectors) and starts_with(region_code, $county)
  and region_level in ('municipality', 'county')
order by bool_or(is_synthetic) over (partition by region_code), length(region_code) desc, region_code, sector_rank
