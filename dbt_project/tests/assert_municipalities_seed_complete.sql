-- The municipalities seed holds all 290 municipalities and the 13 of Östergötland have LA region and study flag.
select 'municipalities' as seed, count(*) as row_count
from {{ ref('municipalities') }}
having count(*) != 290

union all

select 'ostergotland_incomplete' as seed, count(*) as row_count
from {{ ref('municipalities') }}
where county_code = '05' and (la_region is null or study_area is null)
having count(*) > 0
