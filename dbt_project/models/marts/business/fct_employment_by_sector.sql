with

employment as (

    select * from {{ ref('stg_scb__employment_by_sector') }}

),

sni_groups as (

    select * from {{ ref('sni2007_groups') }}

),

by_sex as (

    select
        region_code,
        region_level,
        sni_group_code,
        is_all_industries,
        basis,
        sex_code,
        year,
        period_start,
        employed,
        status,
        source_series,
        is_synthetic,
        lineage
    from employment

),

both_sexes as (

    select
        region_code,
        region_level,
        sni_group_code,
        is_all_industries,
        basis,
        'total' as sex_code,
        year,
        period_start,
        -- ordered aggregate: a fixed summation order keeps rebuilt marts byte-identical
        sum(employed order by sex_code) as employed,
        cast(null as varchar) as status,
        max(source_series) as source_series,
        bool_or(is_synthetic) as is_synthetic,
        {{ lineage_agg('lineage') }} as lineage
    from employment
    group by region_code, region_level, sni_group_code, is_all_industries, basis, year, period_start

),

unioned as (

    select * from by_sex
    union all
    select * from both_sexes

),

final as (

    select
        unioned.region_code,
        unioned.region_level,
        unioned.sni_group_code,
        sni_groups.name_en as sni_group_name_en,
        sni_groups.name_sv as sni_group_name_sv,
        unioned.is_all_industries,
        unioned.basis,
        unioned.sex_code,
        unioned.year,
        unioned.period_start,
        cast(unioned.employed as bigint) as employed,
        unioned.status,
        unioned.source_series,
        {{ provenance_columns('unioned.lineage') }}
    from unioned
    left join sni_groups
        on unioned.sni_group_code = sni_groups.sni_group_code

)

select * from final
