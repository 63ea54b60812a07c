-- Commuting balance per county and year from the county OD matrix (docs/design.md §5, T_ij: live in county i,
-- work in county j; both sexes). The matrix covers every county, so jobs W_j count residents of all of Sweden
-- (unlike the municipal OD extract). Live and work = the diagonal T_ii.
with

flows as (

    select * from {{ ref('int_commuting__county_flows') }}

),

counties as (

    select * from {{ ref('counties') }}

),

by_residence as (

    select
        residence_code as county_code,
        year,
        -- ordered aggregates: a fixed summation order keeps rebuilt marts byte-identical
        sum(commuters order by workplace_code) as employed_residents,
        sum(case when residence_code = workplace_code then commuters else 0 end order by workplace_code)
            as live_and_work,
        {{ lineage_agg('lineage') }} as lineage
    from flows
    group by residence_code, year

),

by_workplace as (

    select
        workplace_code as county_code,
        year,
        sum(commuters order by residence_code) as jobs,
        {{ lineage_agg('lineage') }} as lineage
    from flows
    group by workplace_code, year

),

largest_outflow as (

    select
        residence_code as county_code,
        year,
        workplace_code as largest_outflow_code,
        commuters as largest_outflow
    from flows
    where residence_code != workplace_code
    qualify row_number() over (
            partition by residence_code, year order by commuters desc, workplace_code asc
        ) = 1

),

final as (

    select
        by_residence.county_code,
        counties.county_name_en as county_name,
        by_residence.year,
        cast(by_residence.employed_residents as bigint) as employed_residents,
        cast(by_workplace.jobs as bigint) as jobs,
        cast(by_residence.live_and_work as bigint) as live_and_work,
        cast(by_workplace.jobs - by_residence.live_and_work as bigint) as in_commuters,
        cast(by_residence.employed_residents - by_residence.live_and_work as bigint) as out_commuters,
        cast(by_workplace.jobs - by_residence.employed_residents as bigint) as net_commuting,
        {{ safe_divide('by_workplace.jobs', 'by_residence.employed_residents') }} as job_ratio,
        {{ safe_divide('by_residence.live_and_work', 'by_residence.employed_residents') }}
            as self_containment_supply,
        {{ safe_divide('by_residence.live_and_work', 'by_workplace.jobs') }} as self_containment_demand,
        largest_outflow.largest_outflow_code,
        destination.county_name_en as largest_outflow_name,
        cast(largest_outflow.largest_outflow as bigint) as largest_outflow,
        {{ safe_divide('largest_outflow.largest_outflow', 'by_residence.employed_residents') }}
            as largest_outflow_share,
        {{ provenance_columns(lineage_merge(['by_residence.lineage', 'by_workplace.lineage'])) }}
    from by_residence
    left join by_workplace
        on
            by_residence.county_code = by_workplace.county_code
            and by_residence.year = by_workplace.year
    left join largest_outflow
        on
            by_residence.county_code = largest_outflow.county_code
            and by_residence.year = largest_outflow.year
    left join counties
        on by_residence.county_code = counties.county_code
    left join counties as destination
        on largest_outflow.largest_outflow_code = destination.county_code

)

select * from final
