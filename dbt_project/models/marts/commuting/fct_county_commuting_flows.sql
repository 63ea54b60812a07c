-- County OD flows (both sexes) per residence county x work county x year, real first
-- (int_commuting__county_flows), with county names.
with

flows as (

    select * from {{ ref('int_commuting__county_flows') }}

),

counties as (

    select * from {{ ref('counties') }}

),

final as (

    select
        flows.residence_code as residence_county_code,
        residence.county_name_en as residence_county_name,
        flows.workplace_code as work_county_code,
        workplace.county_name_en as work_county_name,
        flows.residence_code = flows.workplace_code as is_stayer,
        flows.year,
        cast(flows.commuters as bigint) as commuters,
        flows.status,
        flows.source_table,
        {{ provenance_columns('flows.lineage') }}
    from flows
    left join counties as residence
        on flows.residence_code = residence.county_code
    left join counties as workplace
        on flows.workplace_code = workplace.county_code

)

select * from final
