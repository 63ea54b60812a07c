-- The industry parts in mart_sector_shift_share_by_industry add up to the region totals of mart_sector_shift_share.
with

by_industry as (

    select
        region_code,
        sum(growth) as growth,
        sum(national_share) as national_share,
        sum(industry_mix) as industry_mix,
        sum(regional_shift) as regional_shift,
        sum(em_competitive) as em_competitive,
        sum(em_allocation) as em_allocation
    from {{ ref('mart_sector_shift_share_by_industry') }}
    group by region_code

),

region as (

    select * from {{ ref('mart_sector_shift_share') }}

)

select
    region.region_code,
    region.growth,
    by_industry.growth as growth_from_parts
from region
inner join by_industry
    on region.region_code = by_industry.region_code
where
    abs(region.growth - by_industry.growth) > 0.01
    or abs(region.national_share - by_industry.national_share) > 0.01
    or abs(region.industry_mix - by_industry.industry_mix) > 0.01
    or abs(region.regional_shift - by_industry.regional_shift) > 0.01
    -- the region's Esteban-Marquillas parts are null when a group had no base-year employment
    or abs(region.em_competitive - by_industry.em_competitive) > 0.01
    or abs(region.em_allocation - by_industry.em_allocation) > 0.01
