-- The locality's own function value where its municipality supplies district figures: jobs per employed
-- resident of the district(s) that make up the locality (seed locality_districts), per year, from PE12-shaped
-- commuting files. Day population of a district = in-commuters (from other districts and municipalities) +
-- those who live and work in it; employed residents = out-commuters + those who live and work in it.
with

commuting as (

    select * from {{ ref('stg_municipal__commuting') }}
    where area in ('Tot', 'Lika') and flow_type in ('In', 'Ut') and persons is not null

),

locality_districts as (

    select * from {{ ref('locality_districts') }}

),

by_district as (

    select
        district,
        year,
        sum(case when flow_type = 'In' and area = 'Tot' then persons end) as in_commuters,
        sum(case when flow_type = 'Ut' and area = 'Tot' then persons end) as out_commuters,
        -- 'live and work in the same district' is given on both the In and the Ut rows: take it once
        max(case when area = 'Lika' then persons end) as live_and_work,
        {{ lineage_agg('lineage') }} as lineage
    from commuting
    group by district, year

),

by_locality as (

    select
        locality_districts.locality_code,
        by_district.year,
        sum(coalesce(by_district.in_commuters, 0) + coalesce(by_district.live_and_work, 0)) as day_population,
        sum(coalesce(by_district.out_commuters, 0) + coalesce(by_district.live_and_work, 0)) as night_population,
        {{ lineage_agg('by_district.lineage') }} as lineage
    from locality_districts
    inner join by_district
        on locality_districts.district_code = by_district.district
    group by locality_districts.locality_code, by_district.year

)

select
    locality_code,
    year,
    day_population,
    night_population,
    {{ safe_divide('day_population', 'night_population') }} as job_ratio,
    lineage
from by_locality
