//! Product images: an admin asks for an upload URL, and the client sends the image straight
//! to blob storage (S3, or the local server), never through a function. The URL is signed for
//! one content type and exactly the announced size, so the store itself refuses anything
//! else; the image's public address is added to the product at once, conditional on the
//! product's `version` like every other change to its fields.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use validator::{Validate, ValidationError};

use crate::Ports;
use crate::catalogue::model::{Product, ProductStatus};
use crate::catalogue::products::Products;
use crate::commit::{Commit, Round, Tx};
use crate::entity;
use crate::error::{Error, Result};
use crate::ids::ProductId;
use crate::keys;
use crate::ports::{Cond, TxOp, Update};
use crate::validation;

/// The largest image accepted: 5 MiB.
pub const MAX_IMAGE_BYTES: u64 = 5 * 1024 * 1024;

/// The most images one product has.
pub const MAX_IMAGES: usize = 10;

/// How long an upload URL stays valid.
pub const UPLOAD_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// Adding an image: a lost race (another image, an update) is computed again from the
/// product as it is now.
const ADD_IMAGE: Commit = Commit::new("products.add_image", || {
    Error::conflict("the product changed concurrently; try again")
});

/// The image types accepted, with the file extension their keys get.
const IMAGE_TYPES: &[(&str, &str)] = &[
    ("image/png", "png"),
    ("image/jpeg", "jpg"),
    ("image/webp", "webp"),
];

/// `POST /products/{id}/images`: what the client is about to upload.
#[derive(Clone, Debug, Default, Deserialize, Validate)]
pub struct PresignImage {
    #[validate(required, custom(function = "image_type"))]
    pub content_type: Option<String>,
    /// The exact size of the image in bytes.
    #[validate(
        required,
        range(
            min = 1,
            max = "MAX_IMAGE_BYTES",
            message = "must be between 1 and 5242880 bytes"
        )
    )]
    pub size: Option<u64>,
}

/// Where and how to upload the image, and where it will be served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageUpload {
    pub upload_url: String,
    pub method: &'static str,
    /// Headers the upload must carry exactly as given (they are signed).
    pub headers: BTreeMap<String, String>,
    /// The image's public address, already listed in the product's `images`.
    pub image_url: String,
    /// Seconds until `upload_url` expires.
    pub expires_in: u64,
}

/// The extension of an accepted image type.
pub fn extension_of(content_type: &str) -> Option<&'static str> {
    IMAGE_TYPES
        .iter()
        .find(|(accepted, _)| *accepted == content_type)
        .map(|(_, extension)| *extension)
}

fn image_type(value: &str) -> std::result::Result<(), ValidationError> {
    if extension_of(value).is_some() {
        Ok(())
    } else {
        Err(ValidationError::new("content_type")
            .with_message("must be image/png, image/jpeg or image/webp".into()))
    }
}

fn too_many() -> Error {
    Error::conflict(format!(
        "a product has at most {MAX_IMAGES} images; remove one first"
    ))
}

/// Presigns the upload of one image of the active product `product_id` and lists the image's
/// public URL in the product's `images` (bumping its `version`).
#[tracing::instrument(target = "bazaar::span", name = "products.presign_image", skip_all)]
pub async fn presign(
    products: &Products,
    product_id: &ProductId,
    request: PresignImage,
) -> Result<ImageUpload> {
    validation::check(&request)?;
    let content_type = request.content_type.unwrap_or_default();
    let size = request.size.unwrap_or_default();
    let extension = extension_of(&content_type)
        .ok_or_else(|| Error::invalid("content_type", "is not an accepted image type"))?;
    let ports = products.ports();
    let product = products.get(product_id).await?;
    if product.images.len() >= MAX_IMAGES {
        return Err(too_many());
    }
    let key = format!(
        "products/{}/images/{}.{extension}",
        product.id,
        ports.ids.new_id()
    );
    let upload = ports
        .blobs
        .presign_put(&key, &content_type, Some(size), UPLOAD_EXPIRY)
        .await?;
    let image_url = ports.blobs.public_url(&key);
    let (first, url) = (&product, image_url.as_str());
    ADD_IMAGE
        .run(ports, move |round: Round| async move {
            let product = match round.number() {
                0 => first.clone(),
                _ => products.get(product_id).await?,
            };
            if product.images.len() >= MAX_IMAGES {
                return Err(too_many());
            }
            Ok(add_image(ports, &product, url).into())
        })
        .await?;
    Ok(ImageUpload {
        upload_url: upload.url,
        method: upload.method,
        headers: upload.headers.into_iter().collect(),
        image_url,
        expires_in: UPLOAD_EXPIRY.as_secs(),
    })
}

/// Appends `image_url` to the product's images if the product is still the version read.
fn add_image(ports: &Ports, product: &Product, image_url: &str) -> Tx<()> {
    let mut images = product.images.clone();
    images.push(image_url.to_owned());
    let mut tx = Tx::new(());
    tx.write(TxOp::Update {
        key: keys::product(&product.id),
        updates: vec![
            Update::set(Product::IMAGES, json!(images)),
            Update::set(Product::UPDATED_AT, entity::timestamp(ports.clock.now())),
            Update::add(Product::VERSION, 1),
        ],
        cond: Cond::All(vec![
            Cond::eq(Product::VERSION, product.version),
            Cond::eq(Product::STATUS, json!(ProductStatus::Active)),
        ]),
    });
    tx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::check;

    fn request(content_type: &str, size: u64) -> PresignImage {
        PresignImage {
            content_type: Some(content_type.to_owned()),
            size: Some(size),
        }
    }

    fn failing_fields(request: &PresignImage) -> Vec<String> {
        match check(request) {
            Ok(()) => Vec::new(),
            Err(Error::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
            Err(other) => panic!("not a validation error: {other}"),
        }
    }

    #[test]
    fn only_small_png_jpeg_and_webp_images_are_accepted() {
        for content_type in ["image/png", "image/jpeg", "image/webp"] {
            assert!(check(&request(content_type, 1)).is_ok());
            assert!(check(&request(content_type, MAX_IMAGE_BYTES)).is_ok());
        }
        for content_type in ["image/gif", "image/svg+xml", "IMAGE/PNG", "text/html", ""] {
            assert_eq!(
                failing_fields(&request(content_type, 10)),
                ["content_type"],
                "{content_type}"
            );
        }
        assert_eq!(failing_fields(&request("image/png", 0)), ["size"]);
        assert_eq!(
            failing_fields(&request("image/png", MAX_IMAGE_BYTES + 1)),
            ["size"]
        );
        assert_eq!(
            failing_fields(&PresignImage::default()),
            ["content_type", "size"]
        );
    }

    #[test]
    fn keys_get_the_usual_extension() {
        assert_eq!(extension_of("image/png"), Some("png"));
        assert_eq!(extension_of("image/jpeg"), Some("jpg"));
        assert_eq!(extension_of("image/webp"), Some("webp"));
        assert_eq!(extension_of("image/gif"), None);
    }
}
