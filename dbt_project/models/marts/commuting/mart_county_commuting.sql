-- Commuting balance per county and year from the county OD matrix (docs/design.md §5, T_ij: live in county i,
-- work in county j; both sexes). The matrix covers every county, so jobs W_j count residents of all of Sweden
-- (unlike the municipal OD extract). Live and work = the diagonal T_ii. The arithmetic is commuting_balance_ctes
-- (macros/commuting.sql), shared with int_commuting__municipal_balance.
with

flows as (

    select * from {{ ref('int_commuting__county_flows') }}

),

counties as (

    select * from {{ ref('counties') }}

),

{{ commuting_balance_ctes('flows', 'county_code') }},

final as (

    select
        commuting_balance.county_code,
        counties.county_name_en as county_name,
        commuting_balance.year,
        cast(commuting_balance.employed_residents as bigint) as employed_residents,
        cast(commuting_balance.jobs as bigint) as jobs,
        cast(commuting_balance.stayers as bigint) as live_and_work,
        cast(commuting_balance.in_commuters as bigint) as in_commuters,
        cast(commuting_balance.out_commuters as bigint) as out_commuters,
        cast(commuting_balance.net_commuting as bigint) as net_commuting,
        commuting_balance.job_ratio,
        commuting_balance.self_containment_supply,
        commuting_balance.self_containment_demand,
        commuting_balance.largest_outflow_code,
        destination.county_name_en as largest_outflow_name,
        cast(commuting_balance.largest_outflow as bigint) as largest_outflow,
        commuting_balance.largest_outflow_share,
        {{ provenance_columns('commuting_balance.lineage') }}
    from commuting_balance
    left join counties
        on commuting_balance.county_code = counties.county_code
    left join counties as destination
        on commuting_balance.largest_outflow_code = destination.county_code

)

select * from final
