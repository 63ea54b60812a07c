-- Real municipal commuting files (PE12 shape; Linköping 1994-): in, out and net across the municipal border per
-- year, for the county's municipalities that have one.
select municipality_name as municipality, year, in_commuters, out_commuters, net_commuting, stayers,
       self_containment_supply, source_table{{ prov }}
from marts.mart_commuting_balance
where balance_basis = 'municipal_file_pe12' and starts_with(municipality_code, $county)
order by municipality_code, year
