with

source as (

    select * from {{ source('scb', 'population') }}

),

series_breaks as (

    select * from {{ ref('series_breaks') }}
    where raw_table = 'population'

),

-- municipalities formed after 1968: SCB stores 0 for the years before they existed
formation as (

    select * from {{ ref('municipality_formation') }}

),

renamed as (

    select
        region as region_code,
        {{ region_level('region') }} as region_level,
        contentscode as contents_code,
        case contentscode
            when 'BE0101N1' then 'population'
            when '000007ME' then 'population'
            else 'unknown:' || contentscode
        end as measure,
        civilstand as civil_status_code,
        alder as age_code,
        cast(tid as integer) as year,
        make_date(cast(tid as integer), 1, 1) as period_start,
        make_date(cast(tid as integer), 12, 31) as reference_date,
        cast(value as double) as population,
        {{ raw_lineage_columns() }}
    from source

),

-- a zero before the municipality existed is "no such municipality yet", not "nobody lived there"
existing as (

    select
        renamed.* replace (
            case
                when renamed.year < formation.first_population_year and renamed.population = 0 then null
                else renamed.population
            end as population
        ),
        case
            when renamed.year < formation.first_population_year and renamed.population = 0
                then formation.municipality_name || ' (' || formation.municipality_code || ') did not exist yet: '
                    || 'formed ' || strftime(formation.formed_on, '%Y-%m-%d') || ' from part of '
                    || formation.formed_from_name || ' (' || formation.formed_from_code
                    || '), whose figure includes its territory; SCB stores 0'
        end as series_note
    from renamed
    left join formation
        on renamed.region_code = formation.municipality_code

),

final as (

    {{ select_with_source_series('existing') }}

)

select * from final
