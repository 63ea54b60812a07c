with

source as (

    select * from {{ source('municipal', 'regional_employment') }}

),

renamed as (

    select
        region as region_code,
        {{ region_level('region') }} as region_level,
        region_label,
        sni_group as sni_group_code,
        sni_label,
        basis,
        period,
        try_cast(left(period, 4) as integer) as year,
        cast(value as double) as employed,
        {{ raw_lineage_columns() }}
    from source

)

select * from renamed
