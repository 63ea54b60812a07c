with

source as (

    select * from {{ source('scb', 'population') }}

),

series_breaks as (

    select * from {{ ref('series_breaks') }}
    where raw_table = 'population'

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

final as (

    {{ select_with_source_series('renamed') }}

)

select * from final
