with

source as (

    select * from {{ source('scb', 'commuting_flows') }}

),

series_breaks as (

    select * from {{ ref('series_breaks') }}
    where raw_table = 'commuting_flows'

),

renamed as (

    select
        bostadskommun as residence_code,
        arbetsstallekommun as workplace_code,
        bostadskommun = arbetsstallekommun as is_stayer,
        kon as sex_code,
        contentscode as contents_code,
        cast(tid as integer) as year,
        make_date(cast(tid as integer), 1, 1) as period_start,
        cast(value as double) as commuters,
        {{ raw_lineage_columns() }}
    from source

),

final as (

    {{ select_with_source_series('renamed') }}

)

select * from final
