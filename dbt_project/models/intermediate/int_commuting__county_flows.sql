-- County OD flows, both sexes (raw.commuting_od at county level, e.g. SCB's AM0207AC 21 x 21 matrix):
-- residence county x work county x year; per residence county and year one source file (real first).
with

flows as (

    select * from {{ ref('stg_municipal__commuting_od') }}
    where region_level = 'county' and sex_code = 'total' and year is not null

),

source_rank as (

    select
        residence_code,
        year,
        source_table,
        row_number() over (
            partition by residence_code, year order by bool_or(is_synthetic) asc, source_table desc
        ) as preference
    from flows
    group by residence_code, year, source_table

),

chosen as (

    select
        flows.residence_code,
        flows.workplace_code,
        flows.year,
        -- one source per residence and year: a pair appears once unless a file repeats it
        sum(flows.commuters order by flows.source_table) as commuters,
        max(flows.status) as status,
        max(flows.source_table) as source_table,
        bool_or(flows.is_synthetic) as is_synthetic,
        {{ lineage_agg('flows.lineage') }} as lineage
    from flows
    inner join source_rank
        on
            flows.residence_code = source_rank.residence_code
            and flows.year = source_rank.year
            and flows.source_table = source_rank.source_table
    where source_rank.preference = 1
    group by flows.residence_code, flows.workplace_code, flows.year

)

select * from chosen
