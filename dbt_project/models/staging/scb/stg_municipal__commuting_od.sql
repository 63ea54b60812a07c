with

source as (

    select * from {{ source('municipal', 'commuting_od') }}

),

renamed as (

    select
        residence_region as residence_code,
        residence_label,
        work_region as workplace_code,
        work_label as workplace_label,
        case
            when length(residence_region) = 2 and length(work_region) = 2 then 'county'
            when length(residence_region) = 4 and length(work_region) = 4 then 'municipality'
            else 'mixed'
        end as region_level,
        residence_region = work_region as is_stayer,
        -- the contract says 'total'; source labels are accepted too so a raw file never counts twice
        case
            when lower(sex) in ('total', 'totalt', 'men and women', 'män och kvinnor', '1+2', '4') then 'total'
            else sex
        end as sex_code,
        period,
        try_cast(left(period, 4) as integer) as year,
        cast(value as double) as commuters,
        {{ raw_lineage_columns() }}
    from source

)

select * from renamed
