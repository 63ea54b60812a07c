-- Employment per region x year x basis x SNI group, both sexes summed, the 16 groups only
-- (the SCB total A-U+US is not the sum of groups because of disclosure control, so regional totals
-- in the business marts are sums of groups).
with

employment as (

    select * from {{ ref('stg_scb__employment_by_sector') }}

),

aggregated as (

    select
        region_code,
        region_level,
        {{ county_code('region_code') }} as county_code,
        year,
        basis,
        sni_group_code,
        -- ordered aggregate: a fixed summation order keeps rebuilt marts byte-identical
        sum(employed order by sex_code) as employed,
        max(source_series) as source_series,
        bool_or(is_synthetic) as is_synthetic,
        {{ lineage_agg('lineage') }} as lineage
    from employment
    where not is_all_industries
    group by region_code, region_level, year, basis, sni_group_code

)

select * from aggregated
