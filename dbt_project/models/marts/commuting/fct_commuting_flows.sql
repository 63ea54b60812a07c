-- Municipal OD flows by sex and both sexes, real first per residence municipality and year
-- (int_commuting__od_by_sex: a real municipal OD file, then TAB1830; synthetic only where nothing real exists).
with

flows as (

    select * from {{ ref('int_commuting__od_by_sex') }}

),

municipalities as (

    select * from {{ ref('municipalities') }}

),

final as (

    select
        flows.residence_code,
        residence.municipality_name as residence_name,
        flows.workplace_code,
        workplace.municipality_name as workplace_name,
        flows.is_stayer,
        flows.year,
        flows.sex_code,
        cast(flows.commuters as bigint) as commuters,
        flows.status,
        flows.source_series,
        flows.source_table,
        {{ provenance_columns('flows.lineage') }}
    from flows
    left join municipalities as residence
        on flows.residence_code = residence.municipality_code
    left join municipalities as workplace
        on flows.workplace_code = workplace.municipality_code

)

select * from final
