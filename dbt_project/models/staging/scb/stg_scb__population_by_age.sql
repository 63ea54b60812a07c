-- Population by single year of age and sex (TAB638 with civil status eliminated). Age '100+' is the open
-- top group: `age` 100 with `is_open_age_group` true.
with

source as (

    select * from {{ source('scb', 'population_by_age') }}

),

series_breaks as (

    select * from {{ ref('series_breaks') }}
    where raw_table = 'population_by_age'

),

renamed as (

    select
        region as region_code,
        {{ region_level('region') }} as region_level,
        contentscode as contents_code,
        alder as age_code,
        cast(replace(alder, '+', '') as integer) as age,
        alder like '%+' as is_open_age_group,
        kon as sex_code,
        case kon
            when '1' then 'men'
            when '2' then 'women'
            else 'unknown:' || kon
        end as sex,
        cast(tid as integer) as year,
        make_date(cast(tid as integer), 12, 31) as reference_date,
        cast(value as double) as population,
        {{ raw_lineage_columns() }}
    from source

),

final as (

    {{ select_with_source_series('renamed') }}

)

select * from final
