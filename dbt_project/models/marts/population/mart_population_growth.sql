with

growth as (

    select * from {{ ref('int_population__growth') }}

),

final as (

    select
        area_type,
        area_code,
        area_name,
        horizon_label,
        horizon_years,
        start_year,
        end_year,
        cast(population_start as bigint) as population_start,
        cast(population_end as bigint) as population_end,
        cast(population_change as bigint) as population_change,
        growth_pct,
        growth_pct_per_year,
        source_series_start,
        source_series_end,
        crosses_series_break,
        members_with_data,
        members_expected,
        members_excluded,
        series_note,
        is_complete,
        {{ provenance_columns('lineage') }}
    from growth

)

select * from final
