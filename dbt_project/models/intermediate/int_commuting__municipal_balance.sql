-- Commuting balance per residence municipality of the OD extract and year (docs/design.md §5;
-- T_ij: live in i, work in j).
-- Jobs W_i and in-commuting count only residents of the municipalities covered by the OD extract.
with

flows as (

    select * from {{ ref('int_commuting__flows') }}

),

residences as (

    select distinct
        residence_code as municipality_code,
        year
    from flows

),

by_residence as (

    select
        residence_code as municipality_code,
        year,
        -- ordered aggregates: a fixed summation order keeps rebuilt marts byte-identical
        sum(commuters order by workplace_code) as employed_residents,
        sum(case when residence_code = workplace_code then commuters else 0 end order by workplace_code) as stayers,
        bool_or(is_synthetic) as is_synthetic,
        max(source_series) as source_series,
        {{ lineage_agg('lineage') }} as lineage
    from flows
    group by residence_code, year

),

by_workplace as (

    select
        workplace_code as municipality_code,
        year,
        sum(commuters order by residence_code) as jobs,
        {{ lineage_agg('lineage') }} as lineage
    from flows
    group by workplace_code, year

),

largest_outflow as (

    select
        residence_code as municipality_code,
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
        residences.municipality_code,
        residences.year,
        by_residence.employed_residents,
        coalesce(by_workplace.jobs, 0) as jobs,
        by_residence.stayers,
        by_residence.employed_residents - by_residence.stayers as out_commuters,
        coalesce(by_workplace.jobs, 0) - by_residence.stayers as in_commuters,
        coalesce(by_workplace.jobs, 0) - by_residence.employed_residents as net_commuting,
        {{ safe_divide('by_workplace.jobs', 'by_residence.employed_residents') }} as job_ratio,
        {{ safe_divide('by_residence.stayers', 'by_residence.employed_residents') }} as self_containment_supply,
        {{ safe_divide('by_residence.stayers', 'by_workplace.jobs') }} as self_containment_demand,
        {{ safe_divide('by_residence.employed_residents - by_residence.stayers', 'by_residence.employed_residents') }}
            as out_commuting_share,
        largest_outflow.largest_outflow_code,
        largest_outflow.largest_outflow,
        {{ safe_divide('largest_outflow.largest_outflow', 'by_residence.employed_residents') }}
            as largest_outflow_share,
        by_residence.source_series,
        by_residence.is_synthetic,
        {{ lineage_merge(['by_residence.lineage', 'by_workplace.lineage']) }} as lineage
    from residences
    inner join by_residence
        on
            residences.municipality_code = by_residence.municipality_code
            and residences.year = by_residence.year
    left join by_workplace
        on
            residences.municipality_code = by_workplace.municipality_code
            and residences.year = by_workplace.year
    left join largest_outflow
        on
            residences.municipality_code = largest_outflow.municipality_code
            and residences.year = largest_outflow.year

)

select * from final
