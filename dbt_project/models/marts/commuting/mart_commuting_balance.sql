-- Commuting balance per municipality and year from the OD matrix (both sexes). Jobs and in-commuting count
-- only residents of the municipalities in the OD extract (the region set); see `jobs_coverage`.
with

balance as (

    select * from {{ ref('int_commuting__municipal_balance') }}

),

municipalities as (

    select * from {{ ref('municipalities') }}

),

final as (

    select
        balance.municipality_code,
        municipalities.municipality_name,
        balance.year,
        cast(balance.employed_residents as bigint) as employed_residents,
        cast(balance.jobs as bigint) as jobs,
        cast(balance.stayers as bigint) as stayers,
        cast(balance.in_commuters as bigint) as in_commuters,
        cast(balance.out_commuters as bigint) as out_commuters,
        cast(balance.net_commuting as bigint) as net_commuting,
        balance.job_ratio,
        balance.self_containment_supply,
        balance.self_containment_demand,
        balance.out_commuting_share,
        balance.largest_outflow_code,
        destination.municipality_name as largest_outflow_name,
        cast(balance.largest_outflow as bigint) as largest_outflow,
        balance.largest_outflow_share,
        'residences_in_od_extract' as jobs_coverage,
        balance.source_series,
        {{ provenance_columns('balance.lineage') }}
    from balance
    left join municipalities
        on balance.municipality_code = municipalities.municipality_code
    left join municipalities as destination
        on balance.largest_outflow_code = destination.municipality_code

)

select * from final
