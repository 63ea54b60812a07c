with

source as (

    select * from {{ source('scb', 'employment_by_sector') }}

),

series_breaks as (

    select * from {{ ref('series_breaks') }}
    where raw_table = 'employment_by_sector'

),

renamed as (

    select
        region as region_code,
        {{ region_level('region') }} as region_level,
        sni2007 as sni_group_code,
        sni2007 = 'A-U+US' as is_all_industries,
        kon as sex_code,
        contentscode as contents_code,
        case contentscode
            when '000002XH' then 'day'
            when '000002XI' then 'night'
            else 'unknown:' || contentscode
        end as basis,
        case contentscode
            when '000002XH' then 'employed_by_workplace'
            when '000002XI' then 'employed_by_residence'
            else 'unknown:' || contentscode
        end as measure,
        cast(tid as integer) as year,
        make_date(cast(tid as integer), 1, 1) as period_start,
        cast(value as double) as employed,
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
