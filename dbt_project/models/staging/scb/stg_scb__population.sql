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
        status,
        _source_name as source_name,
        _source_table as source_table,
        _load_id as load_id,
        _synthetic as is_synthetic,
        _loaded_at as loaded_at
    from source

),

final as (

    select
        renamed.*,
        series_breaks.source_series
    from renamed
    left join series_breaks
        on
            renamed.source_table = series_breaks.source_table
            and renamed.year between series_breaks.year_from and coalesce(series_breaks.year_to, 9999)

)

select * from final
