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
        {{ raw_lineage_columns() }}
    from source

),

final as (

    {{ select_with_source_series('renamed') }}

)

select * from final
