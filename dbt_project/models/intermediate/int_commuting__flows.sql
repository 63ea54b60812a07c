-- OD flows with both sexes summed: residence x workplace x year.
with

flows as (

    select * from {{ ref('stg_scb__commuting_flows') }}

),

aggregated as (

    select
        residence_code,
        workplace_code,
        year,
        -- ordered aggregate: a fixed summation order keeps rebuilt marts byte-identical
        sum(commuters order by sex_code) as commuters,
        max(source_series) as source_series,
        bool_or(is_synthetic) as is_synthetic,
        {{ lineage_agg('lineage') }} as lineage
    from flows
    group by residence_code, workplace_code, year

)

select * from aggregated
