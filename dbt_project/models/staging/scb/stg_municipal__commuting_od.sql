with

source as (

    select * from {{ source('municipal', 'commuting_od') }}

),

renamed as (

    select
        residence_region as residence_code,
        residence_label,
        work_region as work_code,
        work_label,
        sex,
        period,
        try_cast(left(period, 4) as integer) as year,
        cast(value as double) as commuters,
        {{ raw_lineage_columns() }}
    from source

)

select * from renamed
