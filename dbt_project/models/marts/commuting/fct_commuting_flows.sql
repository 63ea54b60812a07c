with

flows as (

    select * from {{ ref('stg_scb__commuting_flows') }}

),

municipalities as (

    select * from {{ ref('municipalities') }}

),

by_sex as (

    select
        residence_code,
        workplace_code,
        year,
        sex_code,
        commuters,
        status,
        source_series,
        is_synthetic,
        lineage
    from flows

),

both_sexes as (

    select
        residence_code,
        workplace_code,
        year,
        'total' as sex_code,
        -- ordered aggregate: a fixed summation order keeps rebuilt marts byte-identical
        sum(commuters order by sex_code) as commuters,
        cast(null as varchar) as status,
        max(source_series) as source_series,
        bool_or(is_synthetic) as is_synthetic,
        {{ lineage_agg('lineage') }} as lineage
    from flows
    group by residence_code, workplace_code, year

),

unioned as (

    select * from by_sex
    union all
    select * from both_sexes

),

final as (

    select
        unioned.residence_code,
        residence.municipality_name as residence_name,
        unioned.workplace_code,
        workplace.municipality_name as workplace_name,
        unioned.residence_code = unioned.workplace_code as is_stayer,
        unioned.year,
        unioned.sex_code,
        cast(unioned.commuters as bigint) as commuters,
        unioned.status,
        unioned.source_series,
        {{ provenance_columns('unioned.lineage') }}
    from unioned
    left join municipalities as residence
        on unioned.residence_code = residence.municipality_code
    left join municipalities as workplace
        on unioned.workplace_code = workplace.municipality_code

)

select * from final
