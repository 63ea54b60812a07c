-- The var('top_sectors_n') largest SNI groups per region and year on var('employment_basis'), with share and
-- rank change against var('top_sectors_comparison_lag') years earlier (positive = climbed).
with

base as (

    select * from {{ ref('int_employment__sector_base') }}
    where
        basis = '{{ var("employment_basis") }}'
        and region_level in ('municipality', 'county', 'district')

),

sni_groups as (

    select * from {{ ref('sni2007_groups') }}

),

ranked as (

    select
        region_code,
        region_level,
        year,
        basis,
        sni_group_code,
        employed,
        -- ordered window aggregate: a fixed summation order keeps rebuilt marts byte-identical
        {{ safe_divide('employed', 'sum(employed order by sni_group_code) over (partition by region_code, year)') }}
            as share,
        row_number() over (partition by region_code, year order by employed desc, sni_group_code asc) as sector_rank,
        source_table,
        is_synthetic,
        lineage
    from base

),

final as (

    select
        current_year.region_code,
        current_year.region_level,
        current_year.year,
        current_year.basis,
        current_year.sector_rank,
        current_year.sni_group_code,
        sni_groups.name_sv as sni_group_name_sv,
        sni_groups.name_en as sni_group_name_en,
        cast(current_year.employed as bigint) as employed,
        current_year.share,
        comparison.year as comparison_year,
        cast(comparison.employed as bigint) as employed_comparison,
        comparison.share as share_comparison,
        comparison.sector_rank as sector_rank_comparison,
        comparison.sector_rank - current_year.sector_rank as rank_change,
        current_year.source_table,
        {{ provenance_columns(lineage_merge(['current_year.lineage', 'comparison.lineage'])) }}
    from ranked as current_year
    left join ranked as comparison
        on
            current_year.region_code = comparison.region_code
            and current_year.sni_group_code = comparison.sni_group_code
            and current_year.year - {{ var('top_sectors_comparison_lag') }} = comparison.year
    left join sni_groups
        on current_year.sni_group_code = sni_groups.sni_group_code
    where current_year.sector_rank <= {{ var('top_sectors_n') }}

)

select * from final
