-- Top sectors of the latest year: the county's municipalities first, then the county itself.
select region_code, year, sector_rank, sni_group_code, sni_group_name_en, employed, share, comparison_year,
       rank_change{{ prov }}
from marts.mart_top_sectors
where year = (select max(year) from marts.mart_top_sectors) and starts_with(region_code, $county)
order by length(region_code) desc, region_code, sector_rank
