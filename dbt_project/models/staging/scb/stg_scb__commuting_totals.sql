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
        {{ raw_lineage_columns() }}
    from source

),

final as (

    {{ select_with_source_series('renamed') }}

)

select * from final
