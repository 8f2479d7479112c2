//! The catalogue (contract: `docs/openapi.yaml`): categories, products, listing and
//! search without scans, and stock.

pub mod categories;
pub mod images;
pub mod index;
pub mod listing;
pub mod model;
pub mod products;
pub mod requests;
pub mod stock;
pub mod text;

pub use categories::Categories;
pub use listing::{ListRequest, Sort};
pub use model::{Category, Product, ProductStatus, ProductView};
pub use products::Products;
