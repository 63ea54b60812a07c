-- The marts publish persons (population, employed, commuters, ...) as bigint. Casting rounds silently, so check
-- at the source that every count is a whole number: a fractional count would mean a unit or parsing problem.
with

counts as (

    select
        'stg_scb__population' as model,
        region_code as code,
        year,
        population as value
    from {{ ref('stg_scb__population') }}

    union all

    select
        'stg_scb__employment_by_sector' as model,
        region_code as code,
        year,
        employed as value
    from {{ ref('stg_scb__employment_by_sector') }}

    union all

    select
        'stg_scb__commuting_flows' as model,
        residence_code || '>' || workplace_code as code,
        year,
        commuters as value
    from {{ ref('stg_scb__commuting_flows') }}

    union all

    select
        'stg_scb__commuting_totals' as model,
        region_code as code,
        year,
        persons as value
    from {{ ref('stg_scb__commuting_totals') }}

    union all

    select
        'stg_scb__localities' as model,
        locality_code as code,
        year,
        value
    from {{ ref('stg_scb__localities') }}
    where measure = 'population'

)

select *
from counts
where value != round(value)
