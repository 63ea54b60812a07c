-- OD flows with both sexes: residence x workplace x year, real first (int_commuting__od_by_sex).
with

flows as (

    select * from {{ ref('int_commuting__od_by_sex') }}
    where sex_code = 'total'

),

aggregated as (

    select
        residence_code,
        workplace_code,
        year,
        -- one source per residence and year; the group holds one row unless a file repeats a pair
        sum(commuters order by source_table) as commuters,
        max(source_series) as source_series,
        bool_or(is_synthetic) as is_synthetic,
        {{ lineage_agg('lineage') }} as lineage
    from flows
    group by residence_code, workplace_code, year

)

select * from aggregated
