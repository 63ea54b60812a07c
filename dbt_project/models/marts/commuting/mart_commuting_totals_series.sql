-- The long real series of commuting across the municipal border (1993-), one row per municipality and year,
-- from commuting_totals (both sexes), labelled with the series it comes from (RAMS/BAS breaks).
with

totals as (

    select * from {{ ref('stg_scb__commuting_totals') }}
    where sex_code = '4'

),

municipalities as (

    select * from {{ ref('municipalities') }}

),

pivoted as (

    select
        region_code as municipality_code,
        year,
        max(case when measure = 'stayers' then persons end) as stayers,
        max(case when measure = 'out_commuters' then persons end) as out_commuters,
        max(case when measure = 'in_commuters' then persons end) as in_commuters,
        max(source_series) as source_series,
        max(source_table) as source_table,
        bool_or(is_synthetic) as is_synthetic,
        {{ lineage_agg('lineage') }} as lineage
    from totals
    group by region_code, year

),

final as (

    select
        pivoted.municipality_code,
        municipalities.municipality_name,
        pivoted.year,
        cast(pivoted.stayers as bigint) as stayers,
        cast(pivoted.out_commuters as bigint) as out_commuters,
        cast(pivoted.in_commuters as bigint) as in_commuters,
        cast(pivoted.stayers + pivoted.out_commuters as bigint) as employed_residents,
        {{ safe_divide('pivoted.out_commuters', 'pivoted.stayers + pivoted.out_commuters') }} as out_commuting_share,
        {{ safe_divide('pivoted.stayers', 'pivoted.stayers + pivoted.out_commuters') }} as self_containment_supply,
        pivoted.source_series,
        pivoted.source_table,
        {{ provenance_columns('pivoted.lineage') }}
    from pivoted
    left join municipalities
        on pivoted.municipality_code = municipalities.municipality_code

)

select * from final
