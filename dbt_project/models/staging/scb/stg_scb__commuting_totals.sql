with

source as (

    select * from {{ source('scb', 'commuting_totals') }}

),

series_breaks as (

    select * from {{ ref('series_breaks') }}
    where raw_table = 'commuting_totals'

),

renamed as (

    select
        region as region_code,
        kon as sex_code,
        contentscode as contents_code,
        case
            when contentscode in ('00000546', 'AM0207C9', 'AM0207H7') then 'stayers'
            when contentscode in ('00000547', 'AM0207C6', 'AM0207H8') then 'in_commuters'
            when contentscode in ('00000548', 'AM0207C8', 'AM0207H9') then 'out_commuters'
            else 'unknown:' || contentscode
        end as measure,
        cast(tid as integer) as year,
        make_date(cast(tid as integer), 1, 1) as period_start,
        cast(value as double) as persons,
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
