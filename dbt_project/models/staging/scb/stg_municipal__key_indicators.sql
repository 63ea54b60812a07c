-- Linköping kommun's KS indicators (ksi2242.px) typed: one row per year, quarter, region and indicator. When more
-- than one live file holds the same cell (ksi2242.px and a renamed later copy), the most recently loaded wins.
with

source as (

    select * from {{ source('municipal', 'key_indicators') }}

),

renamed as (

    select
        period,
        try_cast(period as integer) as year,
        quarter,
        try_cast(right(quarter, 1) as integer) as quarter_number,
        region as region_code,
        indicator as indicator_code,
        cast(value as double) as indicator_value,
        {{ raw_lineage_columns() }}
    from source

),

latest as (

    select * from renamed
    qualify
        row_number() over (
            partition by period, quarter, region_code, indicator_code
            order by loaded_at desc, source_table desc
        ) = 1

)

select * from latest
